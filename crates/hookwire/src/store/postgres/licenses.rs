//! Licenses on PostgreSQL.

use super::*;

#[async_trait]
impl Licenses for PgStore {
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO licenses (license_id, api_key_hash, created_at) VALUES ($1, $2, $3)",
                &[&license_id, &api_key_hash, &now],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT license_id FROM licenses WHERE api_key_hash = $1",
                &[&api_key_hash],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| r.get(0)))
    }

    async fn list_licenses(&self) -> StoreResult<Vec<String>> {
        let rows = self
            .client()
            .await?
            .query("SELECT license_id FROM licenses ORDER BY license_id", &[])
            .await
            .map_err(db_error)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }
}
