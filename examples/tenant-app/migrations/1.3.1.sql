-- 1.3.1: customers get an email address.
ALTER TABLE customers ADD COLUMN IF NOT EXISTS email text;
