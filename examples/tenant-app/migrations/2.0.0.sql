-- 2.0.0: invoices fall due at a time, not a date (1.4.2's due_date is gone whichever way a
-- tenant came), and changes are audited.
ALTER TABLE invoices DROP COLUMN IF EXISTS due_date;
ALTER TABLE invoices ADD COLUMN IF NOT EXISTS due_at timestamptz;
CREATE TABLE IF NOT EXISTS audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    change text NOT NULL
);
