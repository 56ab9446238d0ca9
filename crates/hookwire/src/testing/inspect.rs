//! What a test's database holds, read as text straight from the database
//! (never through hookwire): for checks that no secret is stored in the
//! clear, on either backend.

use super::TestApp;
use crate::config::DatabaseUrl;

/// Everything the app's database keeps, as text. For SQLite, the bytes of
/// the database file and its WAL and shared-memory files (read lossily, so
/// a secret anywhere in a page shows); for PostgreSQL, every row of every
/// table in the public schema, in its text form.
pub async fn stored_text(app: &TestApp) -> String {
    match &app.database {
        DatabaseUrl::Sqlite(path) => {
            let dir = path.parent().expect("the database file has a directory");
            let name = path.file_name().expect("a file name").to_string_lossy();
            let mut text = String::new();
            for entry in std::fs::read_dir(dir).expect("read the data directory") {
                let entry = entry.expect("a directory entry");
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(name.as_ref())
                {
                    let bytes = std::fs::read(entry.path()).expect("read a database file");
                    text.push_str(&String::from_utf8_lossy(&bytes));
                }
            }
            assert!(!text.is_empty(), "no database file under {}", dir.display());
            text
        }
        DatabaseUrl::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            tokio::spawn(connection);
            let tables = client
                .query(
                    "SELECT table_name::text FROM information_schema.tables
                     WHERE table_schema = 'public' AND table_type = 'BASE TABLE'",
                    &[],
                )
                .await
                .expect("list the tables");
            assert!(!tables.is_empty(), "the test database has no tables");
            let mut text = String::new();
            for table in tables {
                let name: String = table.get(0);
                let rows = client
                    .query(&format!("SELECT t::text FROM \"{name}\" t"), &[])
                    .await
                    .expect("read a table");
                for row in rows {
                    text.push_str(&row.get::<_, String>(0));
                    text.push('\n');
                }
            }
            text
        }
    }
}

/// One stored webhook's URL column, as the database holds it.
pub async fn stored_webhook_url(app: &TestApp, webhook_id: &str) -> String {
    match &app.database {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).expect("open the database");
            conn.query_row(
                "SELECT url FROM webhooks WHERE id = ?1",
                [webhook_id],
                |r| r.get(0),
            )
            .expect("the webhook's row")
        }
        DatabaseUrl::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            tokio::spawn(connection);
            client
                .query_one("SELECT url FROM webhooks WHERE id = $1", &[&webhook_id])
                .await
                .expect("the webhook's row")
                .get(0)
        }
    }
}

/// Answers `sql`, a query of one integer (`SELECT COUNT(*) FROM events`),
/// run straight on the app's database; written in the SQL both backends
/// read alike.
pub async fn stored_count(app: &TestApp, sql: &str) -> i64 {
    match &app.database {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).expect("open the database");
            conn.query_row(sql, [], |r| r.get(0))
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
        DatabaseUrl::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            tokio::spawn(connection);
            client
                .query_one(&format!("SELECT ({sql})::BIGINT"), &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .get(0)
        }
    }
}

/// Runs `sql`, a statement with no parameters, straight on the app's
/// database: a test's way to age rows as if time had passed.
pub async fn execute_stored(app: &TestApp, sql: &str) {
    match &app.database {
        DatabaseUrl::Sqlite(path) => {
            let conn = rusqlite::Connection::open(path).expect("open the database");
            conn.execute_batch(&format!("PRAGMA busy_timeout = 5000; {sql}"))
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        DatabaseUrl::Postgres(url) => {
            let (client, connection) = tokio_postgres::connect(url.expose(), tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    }
}
