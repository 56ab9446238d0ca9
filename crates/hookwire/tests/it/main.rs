//! hookwire's integration tests: one binary, real servers, real databases.

mod bench;
mod browser;
mod delivery;
mod durability;
mod faults;
mod fuzz;
mod ingest;
mod isolation;
mod limits;
mod safety;
mod several_nodes;
mod support;
mod ui;
mod visitors;
mod webhooks_api;
