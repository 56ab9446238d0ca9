//! The one write path for configuration and operator actions.
//!
//! Creating, changing and deleting webhooks, every kind of redelivery,
//! creating licenses and portal links, rotating signing secrets, storing
//! visitor details, and registering LiveChat v3 webhooks and switching
//! them go through [`Service`]. The
//! API, the web app and the CLI call it; none of them writes through the
//! store. That is what keeps two promises in one place: secrets are sealed
//! before the store sees them (the store's write types are
//! [`SealedTargetUrl`](crate::secret::SealedTargetUrl) and
//! [`SealedSecret`](crate::secret::SealedSecret), which only the
//! [`Cipher`] here makes), and whatever makes deliveries due wakes the
//! dispatcher.

mod deliveries;
mod licenses;
mod retention;
mod v3_webhooks;
mod visitors;
mod webhooks;

pub use deliveries::RedeliverySince;
pub use licenses::{create_license, PortalLink};
pub use retention::RetentionView;
pub use v3_webhooks::OpenedV3Webhook;
pub use webhooks::{WebhookChanges, WebhookSpec, MAX_WEBHOOKS_PER_LICENSE};

use crate::engine::dispatcher::DispatcherHandle;
use crate::secret::Cipher;
use crate::store::rules::retention::RetentionPeriod;
use crate::store::{Store, StoreError};
use hookwire_livechat::ValidationError;
use std::sync::Arc;
use std::time::Duration;

/// Why a service call did nothing. Each front end words it its own way.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Bad input, naming the field.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The license has no such thing (a webhook, a delivery).
    #[error("{0}")]
    NotFound(String),
    /// The change would break a rule: a license id taken, too many webhooks.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub type ServiceResult<T> = Result<T, ServiceError>;

/// Configuration writes, sealed and followed by the dispatcher's wake-up.
pub struct Service {
    store: Arc<dyn Store>,
    dispatcher: DispatcherHandle,
    cipher: Cipher,
    /// How long a rotated-out signing secret keeps signing.
    secret_rotation_grace: Duration,
    /// How long a portal link may wait to be opened.
    portal_link_ttl: Duration,
    /// The retention of licenses without one of their own.
    default_retention: RetentionPeriod,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        dispatcher: DispatcherHandle,
        cipher: Cipher,
        secret_rotation_grace: Duration,
        portal_link_ttl: Duration,
        default_retention: RetentionPeriod,
    ) -> Self {
        Service {
            store,
            dispatcher,
            cipher,
            secret_rotation_grace,
            portal_link_ttl,
            default_retention,
        }
    }

    /// Deliveries were made due outside the dispatcher's sight: it claims them now.
    fn made_due(&self) {
        self.dispatcher.wake();
    }
}
