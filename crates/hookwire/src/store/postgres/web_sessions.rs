//! Web sessions and portal links on PostgreSQL, shared by every node.

use super::*;
use crate::store::{WebSession, WebSessions};

#[async_trait]
impl WebSessions for PgStore {
    async fn create_web_session(&self, id_hash: &str, session: WebSession) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "INSERT INTO web_sessions (id_hash, operator, license_id, csrf, framed, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &id_hash,
                    &session.operator,
                    &session.license,
                    &session.csrf,
                    &session.framed,
                    &session.expires_at,
                ],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn web_session(&self, id_hash: &str, now: Millis) -> StoreResult<Option<WebSession>> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT operator, license_id, csrf, framed, expires_at FROM web_sessions
                 WHERE id_hash = $1 AND expires_at > $2",
                &[&id_hash, &now],
            )
            .await
            .map_err(db_error)?;
        Ok(row.map(|r| WebSession {
            operator: r.get(0),
            license: r.get(1),
            csrf: r.get(2),
            framed: r.get(3),
            expires_at: r.get(4),
        }))
    }

    async fn set_web_session_license(&self, id_hash: &str, license_id: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute(
                "UPDATE web_sessions SET license_id = $2 WHERE id_hash = $1",
                &[&id_hash, &license_id],
            )
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn delete_web_session(&self, id_hash: &str) -> StoreResult<()> {
        self.client()
            .await?
            .execute("DELETE FROM web_sessions WHERE id_hash = $1", &[&id_hash])
            .await
            .map(|_| ())
            .map_err(db_error)
    }

    async fn create_portal_link(
        &self,
        token_hash: &str,
        license_id: &str,
        expires_at: Millis,
    ) -> StoreResult<bool> {
        self.client()
            .await?
            .execute(
                "INSERT INTO portal_links (token_hash, license_id, expires_at)
                 SELECT $1, license_id, $3 FROM licenses WHERE license_id = $2",
                &[&token_hash, &license_id, &expires_at],
            )
            .await
            .map(|n| n > 0)
            .map_err(db_error)
    }

    async fn take_portal_link(&self, token_hash: &str, now: Millis) -> StoreResult<Option<String>> {
        // One statement: two nodes opening the same link cannot both get it.
        let row = self
            .client()
            .await?
            .query_opt(
                "DELETE FROM portal_links WHERE token_hash = $1 RETURNING license_id, expires_at",
                &[&token_hash],
            )
            .await
            .map_err(db_error)?;
        Ok(row
            .filter(|r| r.get::<_, Millis>(1) > now)
            .map(|r| r.get(0)))
    }

    async fn prune_web_sessions(&self, now: Millis) -> StoreResult<u64> {
        let client = self.client().await?;
        let sessions = client
            .execute("DELETE FROM web_sessions WHERE expires_at <= $1", &[&now])
            .await
            .map_err(db_error)?;
        let links = client
            .execute("DELETE FROM portal_links WHERE expires_at <= $1", &[&now])
            .await
            .map_err(db_error)?;
        Ok(sessions + links)
    }
}
