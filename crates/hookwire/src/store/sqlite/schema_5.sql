-- Version 5: an optional rate limit per webhook (attempts per second; NULL = none).

ALTER TABLE webhooks ADD COLUMN max_per_second INTEGER;
