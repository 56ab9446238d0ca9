//! The LiveChat webhook domain: v2, as the public v2 documentation describes
//! it, and v3.x (`v3`: the Configuration API's webhooks and their envelope).
//!
//! This crate does no I/O: it knows the event types, the data types each one
//! supports (the documentation's table), the payload shapes, how an incoming
//! platform event is validated, how a target URL is checked and masked, and how
//! PHP-style form bodies (`fields[0][name]=...`) are read. The server and the
//! receiver SDK both build on it, so the two can never drift apart.

#![forbid(unsafe_code)]

pub mod details;
pub mod error;
pub mod event;
pub mod form;
pub mod payload;
pub mod sample;
pub mod shape;
pub mod target;
pub mod types;
pub mod v3;

pub use error::ValidationError;
pub use event::{IncomingEvent, Sections};
pub use payload::{render_payload, PayloadParts};
pub use target::TargetUrl;
pub use types::{DataType, DataTypes, EventType};
