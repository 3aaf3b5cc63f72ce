-- 1.4.0: invoices.
CREATE TABLE IF NOT EXISTS invoices (
    id bigserial PRIMARY KEY,
    order_id bigint NOT NULL REFERENCES orders (id),
    issued_at timestamptz NOT NULL DEFAULT now()
);
