//! The three example integrations from LiveChat's v2 webhook documentation,
//! written as real receivers that run against hookwire (or LiveChat itself):
//!
//! - [`visitor_details`]: on `chat_started`, look the visitor's e-mail up in a
//!   local customer file and send what is known back as custom visitor details.
//! - [`statusboard`]: on `visitor_queued`, ring the bell on a status board.
//! - [`transcript`]: on `chat_ended`, save the whole transcript to a file.
//!
//! Each module has a `run(listener, config)` that serves until the listener
//! fails; the binaries under `src/bin/` only parse flags and call it.

#![forbid(unsafe_code)]

pub mod launch;
pub mod receiver;
pub mod statusboard;
pub mod transcript;
pub mod visitor_details;
