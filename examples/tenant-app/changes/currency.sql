-- The currency fix, made in 2.0.1 and backported to 1.3.3 and 1.4.1: whichever release brings
-- it first makes the change, the others find it made (column, default and check alike).
ALTER TABLE orders ADD COLUMN IF NOT EXISTS currency char(3) NOT NULL DEFAULT 'EUR';
DO $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM pg_constraint
        WHERE conname = 'orders_currency_check' AND conrelid = 'orders'::regclass
    ) THEN
        ALTER TABLE orders ADD CONSTRAINT orders_currency_check CHECK (currency ~ '^[A-Z]{3}$');
    END IF;
END
$$;
