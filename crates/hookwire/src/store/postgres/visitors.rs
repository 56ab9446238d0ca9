//! Visitors and their custom details on PostgreSQL.

use super::*;

fn details_from_rows(rows: &[Row]) -> Vec<DetailsSet> {
    rows.iter()
        .map(|r| DetailsSet {
            set_id: r.get(0),
            icon: r.get(1),
            fields_json: r.get(2),
            updated_at: r.get(3),
        })
        .collect()
}

/// A visitor's details sets, in `rules::visitors::details_order`.
const DETAILS_SQL: &str = "SELECT set_id, icon, fields, updated_at FROM visitor_details
     WHERE license_id = $1 AND visitor_id = $2 ORDER BY updated_at, set_id";

fn visitor_from_row(r: &Row) -> VisitorView {
    VisitorView {
        visitor_id: r.get(0),
        name: r.get(1),
        email: r.get(2),
        last_event_type: r.get(3),
        last_seen_at: r.get(4),
        details: Vec::new(),
    }
}

#[async_trait]
impl Visitors for PgStore {
    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()> {
        // `rules::visitors::merge_details`, as one upsert.
        self.client()
            .await?
            .execute(
                "INSERT INTO visitor_details (license_id, visitor_id, set_id, icon, fields, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (license_id, visitor_id, set_id) DO UPDATE SET
                   icon = excluded.icon, fields = excluded.fields, updated_at = excluded.updated_at",
                &[&license_id, &visitor_id, &set.set_id, &set.icon, &set.fields_json, &set.updated_at],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn visitor(
        &self,
        license_id: &str,
        visitor_id: &str,
    ) -> StoreResult<Option<VisitorView>> {
        let client = self.client().await?;
        let seen = client
            .query_opt(
                "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                 WHERE license_id = $1 AND visitor_id = $2",
                &[&license_id, &visitor_id],
            )
            .await
            .map_err(db_error)?;
        let details = details_from_rows(
            &client
                .query(DETAILS_SQL, &[&license_id, &visitor_id])
                .await
                .map_err(db_error)?,
        );
        Ok(rules::visitors::visitor_view(
            visitor_id,
            seen.as_ref().map(visitor_from_row),
            details,
        ))
    }

    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                 WHERE license_id = $1 ORDER BY last_seen_at DESC LIMIT $2",
                &[&license_id, &(limit as i64)],
            )
            .await
            .map_err(db_error)?;
        let mut visitors: Vec<VisitorView> = rows.iter().map(visitor_from_row).collect();
        for v in &mut visitors {
            v.details = details_from_rows(
                &client
                    .query(DETAILS_SQL, &[&license_id, &v.visitor_id])
                    .await
                    .map_err(db_error)?,
            );
        }
        Ok(visitors)
    }
}
