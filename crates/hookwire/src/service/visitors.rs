//! Custom visitor details: what a receiver posts back through the REST
//! call-back (`POST /visitors/{id}/details`) once its token was checked.

use super::{Service, ServiceResult};
use crate::store::DetailsSet;

impl Service {
    /// Adds or replaces (by its `set_id`) one set of a visitor's details.
    pub async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> ServiceResult<()> {
        Ok(self
            .store
            .put_visitor_details(license_id, visitor_id, set)
            .await?)
    }
}
