//! The store's rules that are not SQL, written once for both backends.
//!
//! A backend's SQL loads the state a rule needs (inside the transaction
//! that must decide atomically) and keeps what it answers; the decision
//! itself is a plain function here, tested on its own:
//!
//! - [`alerts`]: the `delivery.failed` batch (one open per license, spaced),
//!   an alert's next state, and alert rows read back;
//! - [`tags`]: whether a `chat_changed` is delivered, given the chat's tags;
//! - [`idempotency`]: replay, refuse or accept an event with a key;
//! - [`ordering`]: ordered delivery's parking, locks and line places;
//! - [`retention`]: how long finished work is kept, and which rows a prune takes;
//! - [`rows`]: stored strings and numbers read back as typed values, or
//!   [`StoreError::Corrupt`](super::StoreError::Corrupt) naming row and field;
//! - [`visitors`]: a visitor's details sets (replaced by `set_id`) and view;
//! - [`v3`]: which v3 webhooks an event goes to (switch, bots, filters),
//!   what its deliveries add, and v3 rows read back.

pub mod alerts;
pub mod idempotency;
pub mod ordering;
pub mod retention;
pub mod rows;
pub mod tags;
pub mod v3;
pub mod visitors;
