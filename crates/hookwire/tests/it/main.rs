//! hookwire's integration tests: one binary, real servers, real databases.

mod browser;
mod delivery;
mod durability;
mod ingest;
mod support;
mod ui;
mod visitors;
mod webhooks_api;
