//! hookwire: a self-hosted webhook delivery server, LiveChat v2 compatible.
//!
//! The binary (`main.rs`) is a thin shell over [`cli`]. The layers, from the
//! outside in: [`api`] (HTTP, the only module that knows axum), [`service`]
//! (the one write path for configuration), [`engine`] (ingest and
//! delivery), [`store`] (the only module that knows SQL), with
//! [`config`] and [`secret`] beside them. The LiveChat domain itself lives in
//! the `hookwire-livechat` crate.

// Forbidden everywhere but `store::sqlite::configure_process`, which is
// allowed by name (a crate cannot forbid and then allow).
#![deny(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod engine;
pub mod manual;
pub mod secret;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod tools;
