//! End-to-end tests of the three examples: a real hookwire in-process, the
//! example on its own port, a webhook pointing at it, a real event ingested.

mod statusboard;
mod support;
mod transcript;
mod visitor_details;
