//! Visitors: who the events were about, with the custom details receivers
//! posted for them (what agents see).

use super::{Millis, StoreResult};
use async_trait::async_trait;

/// One named set of custom visitor details (LiveChat's `id`), as agents see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetailsSet {
    pub set_id: String,
    pub icon: Option<String>,
    /// A JSON array of `{name, value, url}`.
    pub fields_json: String,
    pub updated_at: Millis,
}

/// A visitor seen in an event, with the details receivers posted for them.
#[derive(Debug, Clone)]
pub struct VisitorView {
    pub visitor_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub last_event_type: Option<String>,
    pub last_seen_at: Option<Millis>,
    pub details: Vec<DetailsSet>,
}

/// Visitors and their custom details. Ingest keeps what events tell of a
/// visitor ([`DeliveryQueue::ingest`](super::DeliveryQueue::ingest)); this
/// reads it and takes the details receivers post.
#[async_trait]
pub trait Visitors: Send + Sync {
    /// Adds or replaces (by `set_id`) one set of a visitor's custom details.
    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()>;
    /// A visitor with their details; `None` when neither is known.
    async fn visitor(&self, license_id: &str, visitor_id: &str)
        -> StoreResult<Option<VisitorView>>;
    /// The most recently seen visitors of a license, newest first.
    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>>;
}
