//! hookwire's integration tests: one binary, real servers, real databases.

mod alerts;
mod backup;
mod bench;
mod browser;
mod delivery;
mod disk_full;
mod durability;
mod faults;
mod fuzz;
mod ingest;
mod isolation;
mod limits;
mod livechat_v3;
mod livechat_v3_sdk;
mod openapi;
mod ops;
mod receiver_crate;
mod safety;
mod several_nodes;
mod store;
mod support;
mod tls;
mod tools;
mod ui;
mod visitors;
mod webhooks_api;
