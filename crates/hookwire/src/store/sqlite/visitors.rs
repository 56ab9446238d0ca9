//! Visitors and their custom details on SQLite.

use super::*;

/// A visitor's details sets, in `rules::visitors::details_order`.
fn details_of(
    c: &Connection,
    license_id: &str,
    visitor_id: &str,
) -> rusqlite::Result<Vec<DetailsSet>> {
    c.prepare_cached(
        "SELECT set_id, icon, fields, updated_at FROM visitor_details
         WHERE license_id = ?1 AND visitor_id = ?2 ORDER BY updated_at, set_id",
    )?
    .query_map(params![license_id, visitor_id], |r| {
        Ok(DetailsSet {
            set_id: r.get(0)?,
            icon: r.get(1)?,
            fields_json: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?
    .collect()
}

fn visitor_from_row(r: &Row<'_>) -> rusqlite::Result<VisitorView> {
    Ok(VisitorView {
        visitor_id: r.get(0)?,
        name: r.get(1)?,
        email: r.get(2)?,
        last_event_type: r.get(3)?,
        last_seen_at: r.get(4)?,
        details: Vec::new(),
    })
}

#[async_trait]
impl Visitors for SqliteStore {
    async fn put_visitor_details(
        &self,
        license_id: &str,
        visitor_id: &str,
        set: DetailsSet,
    ) -> StoreResult<()> {
        let (license, visitor) = (license_id.to_string(), visitor_id.to_string());
        // `rules::visitors::merge_details`, as one upsert.
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO visitor_details (license_id, visitor_id, set_id, icon, fields, updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (license_id, visitor_id, set_id) DO UPDATE SET
                       icon = excluded.icon, fields = excluded.fields, updated_at = excluded.updated_at",
                    params![license, visitor, set.set_id, set.icon, set.fields_json, set.updated_at],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn visitor(
        &self,
        license_id: &str,
        visitor_id: &str,
    ) -> StoreResult<Option<VisitorView>> {
        let (license, visitor) = (license_id.to_string(), visitor_id.to_string());
        self.read(move |c| {
            let seen = c
                .prepare_cached(
                    "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                     WHERE license_id = ?1 AND visitor_id = ?2",
                )?
                .query_row(params![license, visitor], visitor_from_row)
                .optional()?;
            let details = details_of(c, &license, &visitor)?;
            Ok(rules::visitors::visitor_view(&visitor, seen, details))
        })
        .await
    }

    async fn recent_visitors(
        &self,
        license_id: &str,
        limit: usize,
    ) -> StoreResult<Vec<VisitorView>> {
        let license = license_id.to_string();
        self.read(move |c| {
            let mut visitors: Vec<VisitorView> = c
                .prepare_cached(
                    "SELECT visitor_id, name, email, last_event_type, last_seen_at FROM visitors
                     WHERE license_id = ?1 ORDER BY last_seen_at DESC LIMIT ?2",
                )?
                .query_map(params![license, limit as i64], visitor_from_row)?
                .collect::<rusqlite::Result<_>>()?;
            for v in &mut visitors {
                v.details = details_of(c, &license, &v.visitor_id)?;
            }
            Ok(visitors)
        })
        .await
    }
}
