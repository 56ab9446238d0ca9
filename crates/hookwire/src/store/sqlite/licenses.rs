//! Licenses on SQLite.

use super::*;

#[async_trait]
impl Licenses for SqliteStore {
    async fn create_license(
        &self,
        license_id: &str,
        api_key_hash: &str,
        now: Millis,
    ) -> StoreResult<()> {
        let (id, hash) = (license_id.to_string(), api_key_hash.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO licenses (license_id, api_key_hash, created_at) VALUES (?1, ?2, ?3)",
                    params![id, hash, now],
                )
                .map(|_| ())
                .map_err(conflict_or_unavailable)
            })
            .await
    }

    async fn license_by_key_hash(&self, api_key_hash: &str) -> StoreResult<Option<String>> {
        let hash = api_key_hash.to_string();
        self.read(move |c| {
            c.prepare_cached("SELECT license_id FROM licenses WHERE api_key_hash = ?1")?
                .query_row([hash], |r| r.get(0))
                .optional()
        })
        .await
    }

    async fn list_licenses(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT license_id FROM licenses ORDER BY license_id")?
                .query_map([], |r| r.get(0))?
                .collect()
        })
        .await
    }
}
