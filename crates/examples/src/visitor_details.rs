//! "Displaying visitor details in LiveChat apps": on `chat_started`, look the
//! visitor's e-mail up in a local customer database (a CSV file here) and send
//! what is known back through the custom visitor details call
//! (`POST /visitors/{id}/details`), exactly as the documentation's PHP script
//! does, so agents see the customer's age and position next to the chat.

use crate::receiver::{self, Webhook};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Config {
    /// The customer "database": CSV with a header row naming `email`, `age`
    /// and `position`. Re-read on every chat, so edits need no restart.
    pub customers: PathBuf,
    /// Where the details call goes: hookwire's address, or
    /// `https://api.livechatinc.com` for LiveChat itself.
    pub api_url: String,
    /// Names this integration's data set; a visitor can carry one per id.
    pub integration_id: String,
    /// Icon URL without the scheme, as the API asks.
    pub icon: String,
}

impl Config {
    /// The documentation's values for everything but the file and the API.
    pub fn new(customers: impl Into<PathBuf>, api_url: impl Into<String>) -> Config {
        Config {
            customers: customers.into(),
            api_url: api_url.into(),
            integration_id: "my-integration".into(),
            icon: "example.com/ico-64.png".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    pub email: String,
    pub age: String,
    pub position: String,
}

/// The parsed customer file.
#[derive(Debug, Clone, Default)]
pub struct CustomerDb {
    customers: Vec<Customer>,
}

impl CustomerDb {
    /// Reads CSV with a header row; the three columns may come in any order
    /// and other columns are ignored, so an export from elsewhere works as is.
    pub fn parse(text: &str) -> Result<CustomerDb, String> {
        let mut rows = csv_rows(text).into_iter();
        let header = rows.next().ok_or("the customer file is empty")?;
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name))
                .ok_or(format!("the customer file has no `{name}` column"))
        };
        let (email, age, position) = (column("email")?, column("age")?, column("position")?);
        let cell =
            |row: &[String], i: usize| row.get(i).map(|s| s.trim().to_string()).unwrap_or_default();
        let customers = rows
            .filter(|row| !cell(row, email).is_empty())
            .map(|row| Customer {
                email: cell(&row, email),
                age: cell(&row, age),
                position: cell(&row, position),
            })
            .collect();
        Ok(CustomerDb { customers })
    }

    pub async fn load(path: &std::path::Path) -> Result<CustomerDb, String> {
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        CustomerDb::parse(&text)
    }

    pub fn len(&self) -> usize {
        self.customers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customers.is_empty()
    }

    /// E-mail addresses are compared without case: visitors type them freely.
    pub fn lookup(&self, email: &str) -> Option<&Customer> {
        let email = email.trim();
        self.customers
            .iter()
            .find(|c| c.email.eq_ignore_ascii_case(email))
    }
}

/// Splits CSV text into rows of cells (RFC 4180: quoted cells may hold
/// commas, doubled quotes and line breaks). Blank lines are skipped.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let (mut row, mut cell) = (Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => cell.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut cell)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut cell));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => cell.push(c),
        }
    }
    row.push(cell);
    rows.push(row);
    rows.retain(|r| !(r.len() == 1 && r[0].trim().is_empty()));
    rows
}

/// The body PHP's `http_build_query` makes of the documentation's array, byte
/// for byte: keys in that order, brackets and slashes percent-encoded.
pub fn details_form(
    license_id: &str,
    token: &str,
    integration_id: &str,
    icon: &str,
    fields: &[(&str, &str)],
) -> String {
    let mut pairs = vec![
        ("license_id".to_string(), license_id),
        ("token".to_string(), token),
        ("id".to_string(), integration_id),
        ("icon".to_string(), icon),
    ];
    for (i, (name, value)) in fields.iter().enumerate() {
        pairs.push((format!("fields[{i}][name]"), name));
        pairs.push((format!("fields[{i}][value]"), value));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", php_urlencode(k), php_urlencode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// PHP's `urlencode`: only letters, digits and `-_.` stay, space becomes `+`.
/// (Stricter than `application/x-www-form-urlencoded` needs, which is the point:
/// the body matches the seed script's.)
pub fn php_urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Serves the receiver until the listener fails.
pub async fn run(listener: TcpListener, config: Config) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(std::io::Error::other)?;
    let config = Arc::new(config);
    receiver::serve(listener, "chat_started", move |hook| {
        let (config, http) = (config.clone(), http.clone());
        async move {
            // Answer the webhook at once; the call-back may be slow, and a
            // sender that times out would retry and start it all over.
            tokio::spawn(async move {
                if let Err(e) = on_chat_started(&config, &http, hook).await {
                    tracing::warn!("visitor details: {e}");
                }
            });
            Ok(())
        }
    })
    .await
}

async fn on_chat_started(
    config: &Config,
    http: &reqwest::Client,
    hook: Webhook,
) -> Result<(), String> {
    let visitor = hook
        .visitor
        .ok_or("chat_started without visitor data; add the `visitor` data type to the webhook")?;
    let Some(email) = visitor.email.as_deref().filter(|e| !e.trim().is_empty()) else {
        tracing::info!(
            "visitor {} left no e-mail address",
            receiver::printable(&visitor.id)
        );
        return Ok(());
    };
    let db = CustomerDb::load(&config.customers).await?;
    let Some(customer) = db.lookup(email) else {
        tracing::info!("{} is not a known customer", receiver::printable(email));
        return Ok(());
    };
    let body = details_form(
        &hook.license_id,
        &hook.token,
        &config.integration_id,
        &config.icon,
        &[("Age", &customer.age), ("Position", &customer.position)],
    );
    let url = format!(
        "{}/visitors/{}/details",
        config.api_url.trim_end_matches('/'),
        php_urlencode(&visitor.id)
    );
    let answer = http
        .post(&url)
        .header("X-API-Version", "2")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("POST {url}: {e}"))?;
    let status = answer.status();
    let text = answer.text().await.unwrap_or_default();
    if status.is_success() {
        tracing::info!(
            "details for {} sent: {status} {text}",
            receiver::printable(&visitor.id)
        );
        Ok(())
    } else {
        Err(format!("POST {url} answered {status}: {text}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_matches_php_http_build_query() {
        let body = details_form(
            "1025707",
            "27f41c8da685c81a890f9e5f8ce48387",
            "my-integration",
            "example.com/ico-64.png",
            &[("Age", "36"), ("Position", "CEO")],
        );
        assert_eq!(
            body,
            "license_id=1025707&token=27f41c8da685c81a890f9e5f8ce48387&id=my-integration\
             &icon=example.com%2Fico-64.png&fields%5B0%5D%5Bname%5D=Age&fields%5B0%5D%5Bvalue%5D=36\
             &fields%5B1%5D%5Bname%5D=Position&fields%5B1%5D%5Bvalue%5D=CEO"
        );
        assert_eq!(
            php_urlencode("Head of R&D ~ é*"),
            "Head+of+R%26D+%7E+%C3%A9%2A"
        );
    }

    #[test]
    fn csv_lookup() {
        let db = CustomerDb::parse(
            "position,Email,age,notes\r\n\
             CEO,mary.brown@email.com,36,\n\
             \n\
             \"Head of Sales, EMEA\",john@example.com,41,\"said \"\"hi\"\"\ntwice\"\n",
        )
        .unwrap();
        assert_eq!(db.len(), 2);
        let mary = db.lookup(" Mary.Brown@Email.com").unwrap();
        assert_eq!((mary.age.as_str(), mary.position.as_str()), ("36", "CEO"));
        assert_eq!(
            db.lookup("john@example.com").unwrap().position,
            "Head of Sales, EMEA"
        );
        assert!(db.lookup("nobody@example.com").is_none());
        assert!(CustomerDb::parse("email,age\nx@y.z,3\n")
            .unwrap_err()
            .contains("position"));
        assert!(CustomerDb::parse("").is_err());
    }
}
