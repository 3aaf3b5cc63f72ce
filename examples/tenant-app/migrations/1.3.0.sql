-- 1.3.0: the first schema the catalog knows.
CREATE TABLE IF NOT EXISTS customers (
    id bigserial PRIMARY KEY,
    name text NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    total numeric(12, 2) NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
