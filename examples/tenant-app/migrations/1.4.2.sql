-- 1.4.2: a due date on invoices, for the 1.4 line only: 2.0.0 replaces it with due_at.
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS due_date date;
