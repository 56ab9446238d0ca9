//! "Save each chat transcript in the external system": on `chat_ended`, write
//! the whole chat to `{dir}/{chat id}.txt`, readable by a person. The file is
//! replaced atomically, so a retried webhook rewrites it in place and a reader
//! never sees half a transcript.

use crate::receiver::{self, Webhook};
use hookwire_livechat::payload::{Chat, Message, Visitor};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::net::TcpListener;

#[derive(Debug, Clone)]
pub struct Config {
    /// Created if missing.
    pub dir: PathBuf,
}

/// `2013-01-23 10:40:53 UTC`; `unknown` for a missing or impossible time.
pub fn utc_datetime(ts: Option<i64>) -> String {
    match ts.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()) {
        Some(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        None => "unknown".into(),
    }
}

fn utc_time(ts: i64) -> String {
    match OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!("{:02}:{:02}:{:02}", t.hour(), t.minute(), t.second()),
        Err(_) => "--:--:--".into(),
    }
}

/// `Author (role)`, with supervisors' messages marked: the visitor never saw
/// them, which matters to whoever reads the transcript later.
fn author(m: &Message) -> String {
    let name = if m.author_name.trim().is_empty() {
        "(unnamed)".to_string()
    } else {
        receiver::printable(m.author_name.trim())
    };
    let role = receiver::printable(&m.user_type);
    if m.is_whisper() {
        format!("{name} ({role}, whisper)")
    } else {
        format!("{name} ({role})")
    }
}

/// The transcript text: a header, then one entry per message in the order
/// the chat had them. Later lines of a multi-line message are indented so
/// every entry still starts with its time.
pub fn format_transcript(chat: &Chat, visitor: Option<&Visitor>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Chat: {}", receiver::printable(&chat.id));
    let who = visitor.map(|v| {
        let name = v
            .name
            .as_deref()
            .map(receiver::printable)
            .filter(|n| !n.is_empty());
        let email = v
            .email
            .as_deref()
            .map(receiver::printable)
            .filter(|e| !e.is_empty());
        match (name, email) {
            (Some(n), Some(e)) => format!("{n} <{e}>"),
            (Some(n), None) => n,
            (None, Some(e)) => format!("<{e}>"),
            (None, None) => receiver::printable(&v.id),
        }
    });
    let _ = writeln!(out, "Visitor: {}", who.as_deref().unwrap_or("unknown"));
    let _ = writeln!(out, "Started: {}", utc_datetime(chat.started_timestamp));
    let _ = writeln!(out, "Ended:   {}", utc_datetime(chat.ended_timestamp));
    if !chat.tags.is_empty() {
        let _ = writeln!(
            out,
            "Tags:    {}",
            receiver::printable(&chat.tags.join(", "))
        );
    }
    out.push('\n');
    for m in &chat.messages {
        let text = m
            .text
            .lines()
            .map(|l| {
                l.chars()
                    .filter(|c| !c.is_control() || *c == '\t')
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n    ");
        let _ = writeln!(out, "[{}] {}: {}", utc_time(m.timestamp), author(m), text);
    }
    out
}

/// A file name from a chat id: anything but letters, digits, `-`, `_` and
/// `.` becomes `_`, and a leading dot too, so an id cannot leave the
/// directory or hide the file.
pub fn file_name(chat_id: &str) -> String {
    let mut name: String = chat_id
        .chars()
        .take(120)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    if name.is_empty() || name.starts_with('.') {
        name.insert(0, '_');
    }
    name + ".txt"
}

/// Writes next to the target, syncs, renames over it. Each writer has its
/// own temporary file, so two deliveries of the same chat cannot interleave.
pub fn write_atomically(dir: &Path, name: &str, text: &str) -> std::io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}.tmp", std::process::id()));
    let target = dir.join(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}

/// Serves the receiver until the listener fails.
pub async fn run(listener: TcpListener, config: Config) -> std::io::Result<()> {
    tokio::fs::create_dir_all(&config.dir).await?;
    let dir = Arc::new(config.dir);
    receiver::serve(listener, "chat_ended", move |hook: Webhook| {
        let dir = dir.clone();
        async move {
            let Some(chat) = hook.chat else {
                tracing::warn!("chat_ended without chat data; add the `chat` data type");
                return Ok(());
            };
            let text = format_transcript(&chat, hook.visitor.as_ref());
            let name = file_name(&chat.id);
            // Written before answering: a local write is quick, and if it
            // fails the sender sees an error and retries instead of losing
            // the transcript.
            let path = tokio::task::spawn_blocking(move || write_atomically(&dir, &name, &text))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("saving the transcript: {e}"))?;
            tracing::info!("saved {}", path.display());
            Ok(())
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_the_documented_chat() {
        let chat: Chat = serde_json::from_value(json!({
            "id": "MH022RD0K5", "started_timestamp": 1358937653, "ended_timestamp": 1358939109,
            "messages": [
                {"user_type": "agent", "author_name": "John Doe", "agent_id": "john.doe@mycompany.com", "text": "Hello", "timestamp": 1358937653},
                {"user_type": "supervisor", "author_name": "James Doe", "agent_id": "james@mycompany.com", "text": "This is whispered message.", "timestamp": 1358937658},
                {"user_type": "visitor", "author_name": "Mary Brown", "text": "How are you?\nAll good?", "timestamp": 1358937661}
            ],
            "tags": ["sales", "support", "feedback"]
        }))
        .unwrap();
        let visitor: Visitor = serde_json::from_value(json!({
            "id": "S1", "name": "Mary Brown", "email": "mary.brown@email.com"
        }))
        .unwrap();
        assert_eq!(
            format_transcript(&chat, Some(&visitor)),
            "Chat: MH022RD0K5\n\
             Visitor: Mary Brown <mary.brown@email.com>\n\
             Started: 2013-01-23 10:40:53 UTC\n\
             Ended:   2013-01-23 11:05:09 UTC\n\
             Tags:    sales, support, feedback\n\
             \n\
             [10:40:53] John Doe (agent): Hello\n\
             [10:40:58] James Doe (supervisor, whisper): This is whispered message.\n\
             [10:41:01] Mary Brown (visitor): How are you?\n    All good?\n"
        );
        let bare: Chat = serde_json::from_value(json!({"id": "X"})).unwrap();
        assert_eq!(
            format_transcript(&bare, None),
            "Chat: X\nVisitor: unknown\nStarted: unknown\nEnded:   unknown\n\n"
        );
    }

    #[test]
    fn file_names_stay_in_the_directory() {
        assert_eq!(file_name("MH022RD0K5"), "MH022RD0K5.txt");
        assert_eq!(file_name("../etc/passwd"), "_.._etc_passwd.txt");
        assert_eq!(file_name(""), "_.txt");
        assert_eq!(file_name("a b/c"), "a_b_c.txt");
    }

    #[test]
    fn rewrites_in_place() {
        let dir = tempfile::TempDir::new().unwrap();
        write_atomically(dir.path(), "C.txt", "first").unwrap();
        let path = write_atomically(dir.path(), "C.txt", "second").unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), "second");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
