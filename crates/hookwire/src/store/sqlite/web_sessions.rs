//! Web sessions and portal links on SQLite.

use super::*;
use crate::store::{WebSession, WebSessions};

#[async_trait]
impl WebSessions for SqliteStore {
    async fn create_web_session(&self, id_hash: &str, session: WebSession) -> StoreResult<()> {
        let id = id_hash.to_string();
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO web_sessions (id_hash, operator, license_id, csrf, framed, expires_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        id,
                        session.operator,
                        session.license,
                        session.csrf,
                        session.framed,
                        session.expires_at
                    ],
                )
                .map(|_| ())
                .map_err(conflict_or_unavailable)
            })
            .await
    }

    async fn web_session(&self, id_hash: &str, now: Millis) -> StoreResult<Option<WebSession>> {
        let id = id_hash.to_string();
        self.read(move |c| {
            c.prepare_cached(
                "SELECT operator, license_id, csrf, framed, expires_at FROM web_sessions
                 WHERE id_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![id, now], |r| {
                Ok(WebSession {
                    operator: r.get(0)?,
                    license: r.get(1)?,
                    csrf: r.get(2)?,
                    framed: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            })
            .optional()
        })
        .await
    }

    async fn set_web_session_license(&self, id_hash: &str, license_id: &str) -> StoreResult<()> {
        let (id, license) = (id_hash.to_string(), license_id.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "UPDATE web_sessions SET license_id = ?2 WHERE id_hash = ?1",
                    params![id, license],
                )
                .map(|_| ())
                .map_err(unavailable)
            })
            .await
    }

    async fn delete_web_session(&self, id_hash: &str) -> StoreResult<()> {
        let id = id_hash.to_string();
        self.writer
            .write(move |c| {
                c.execute("DELETE FROM web_sessions WHERE id_hash = ?1", [id])
                    .map(|_| ())
                    .map_err(unavailable)
            })
            .await
    }

    async fn create_portal_link(
        &self,
        token_hash: &str,
        license_id: &str,
        expires_at: Millis,
    ) -> StoreResult<bool> {
        let (token, license) = (token_hash.to_string(), license_id.to_string());
        self.writer
            .write(move |c| {
                c.execute(
                    "INSERT INTO portal_links (token_hash, license_id, expires_at)
                     SELECT ?1, license_id, ?3 FROM licenses WHERE license_id = ?2",
                    params![token, license, expires_at],
                )
                .map(|n| n > 0)
                .map_err(conflict_or_unavailable)
            })
            .await
    }

    async fn take_portal_link(&self, token_hash: &str, now: Millis) -> StoreResult<Option<String>> {
        let token = token_hash.to_string();
        // Deleted whether or not it is still valid: one use either way.
        self.writer
            .write(move |c| {
                c.query_row(
                    "DELETE FROM portal_links WHERE token_hash = ?1
                     RETURNING license_id, expires_at",
                    [token],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, Millis>(1)?)),
                )
                .optional()
                .map(|row| row.filter(|(_, expires)| *expires > now).map(|(l, _)| l))
                .map_err(unavailable)
            })
            .await
    }

    async fn prune_web_sessions(&self, now: Millis) -> StoreResult<u64> {
        self.writer
            .write(move |c| {
                let sessions = c
                    .execute("DELETE FROM web_sessions WHERE expires_at <= ?1", [now])
                    .map_err(unavailable)?;
                let links = c
                    .execute("DELETE FROM portal_links WHERE expires_at <= ?1", [now])
                    .map_err(unavailable)?;
                Ok((sessions + links) as u64)
            })
            .await
    }
}
