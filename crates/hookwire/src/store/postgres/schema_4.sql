-- Version 4 (PostgreSQL; mirrors store/sqlite/schema_5.sql): an optional rate
-- limit per webhook (attempts per second; NULL = none).

ALTER TABLE webhooks ADD COLUMN max_per_second INTEGER;
