//! hookwire's integration tests: one binary, real servers, real databases.

mod delivery;
mod durability;
mod ingest;
mod safety;
mod support;
mod visitors;
mod webhooks_api;
