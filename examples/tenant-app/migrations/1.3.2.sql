-- 1.3.2: orders are looked up by customer.
CREATE INDEX IF NOT EXISTS orders_customer_id_idx ON orders (customer_id);
