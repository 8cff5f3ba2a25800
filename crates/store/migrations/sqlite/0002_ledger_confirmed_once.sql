-- Each version of an order is confirmed delivered at most once, whichever session confirms it.
CREATE UNIQUE INDEX delivery_ledger_confirmed_once ON delivery_ledger (order_id, version)
    WHERE confirmed_at IS NOT NULL;
