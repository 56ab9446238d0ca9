//! Event bodies (~1 KiB once rendered) as the platform reports them, the
//! webhook body hookwire makes of one, and a template that renders event
//! `seq` by copying one pre-rendered body and writing its digits in place:
//! the generator's CPU per request is part of what the benchmark reports,
//! so it must not go on formatting JSON.

use bytes::{BufMut, Bytes, BytesMut};

/// The chat and visitor of every event; `{SEQ}` becomes the sequence number.
const CHAT: &str = r#"{"id":"bench-{SEQ}","messages":[{"author_name":"John Doe","user_type":"agent","text":"Hello, how can I help you today? We have a few offers running this week.","timestamp":1358937653},{"author_name":"Mary Brown","user_type":"visitor","text":"I would like to ask about the pricing of the annual plan for a team of twelve.","timestamp":1358937661},{"author_name":"John Doe","user_type":"agent","text":"Sure, the annual plan is billed per seat; let me send you the details by email.","timestamp":1358937670},{"author_name":"Mary Brown","user_type":"visitor","text":"Thank you, that works for me.","timestamp":1358937688}],"tags":["sales","pricing"],"started_timestamp":1358937653}"#;
const VISITOR: &str = r#"{"id":"S{SEQ}.0c151b0e1b","name":"Mary Brown","email":"mary.brown@email.com","ip":"203.0.113.7","city":"Gdansk","country":"Poland","language":"en"}"#;

/// Visitor ids are this plus the sequence number, ten digits.
pub const VISITOR_BASE: usize = 1_354_547_427;
const SEQ_DIGITS: usize = 9;
const VISITOR_DIGITS: usize = 10;
/// Tenant license ids are this plus the tenant's index: always five digits,
/// so the template's license id has a fixed width.
const TENANT_BASE: usize = 10_000;
const TENANT_DIGITS: usize = 5;

fn chat(seq: usize) -> String {
    CHAT.replace("{SEQ}", &format!("{seq:09}"))
}

/// Each event has a visitor of its own, as real traffic does (one visitor
/// for every event would serialize PostgreSQL's visitor upserts on one row).
fn visitor(seq: usize) -> String {
    VISITOR.replace("{SEQ}", &format!("{:010}", VISITOR_BASE + seq))
}

/// The license id of tenant `i` in the multi-tenant scenario.
pub fn tenant_id(i: usize) -> String {
    format!("{}", TENANT_BASE + i)
}

/// One event for `license` as the platform reports it.
pub fn event_for(seq: usize, license: &str) -> String {
    event_in_chat(seq, seq, license)
}

/// Event `seq` of chat `chat` (its visitor still carries `seq`).
fn event_in_chat(seq: usize, chat_no: usize, license: &str) -> String {
    format!(
        r#"{{"event_type":"chat_started","license_id":"{license}","chat":{},"visitor":{}}}"#,
        chat(chat_no),
        visitor(seq)
    )
}

/// The body hookwire sends for event `seq` of license 1 (same fields, same
/// order and size).
pub fn webhook_body(seq: usize) -> String {
    format!(
        r#"{{"event_type":"chat_started","token":"{t}","license_id":"1","chat":{},"visitor":{},"event_unique_id":"{t}"}}"#,
        chat(seq),
        visitor(seq),
        t = "0123456789abcdef0123456789abcdef"
    )
}

/// Writes `v` as `width` decimal digits (zero-padded) at `out[at..]`.
fn put_digits(out: &mut [u8], at: usize, width: usize, mut v: usize) {
    for b in out[at..at + width].iter_mut().rev() {
        *b = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Renders events by copying a template and writing three numbers in place.
pub struct Events {
    template: Vec<u8>,
    seq_at: usize,
    visitor_at: usize,
    /// Over how many chats events rotate (event `seq` is in chat `seq %
    /// chats`); None: a chat of its own for every event.
    chats: Option<usize>,
    /// Where the license id is, and over how many tenants events rotate
    /// (event `seq` belongs to tenant `seq % tenants`); None: license 1.
    tenants: Option<(usize, usize)>,
}

impl Events {
    /// Every event for license 1 (`process::LICENSE`).
    pub fn single() -> Events {
        Events::build(crate::process::LICENSE, None)
    }

    /// Event `seq` for license 1 in chat `seq % chats` (`bench-{seq %
    /// chats}`); the visitor id keeps `seq`, so every event stays distinct
    /// and the receiver can tell them apart (`receiver::find_visitor_seq`).
    pub fn over_chats(chats: usize) -> Events {
        assert!(chats > 0, "at least one chat");
        Events {
            chats: Some(chats),
            ..Events::single()
        }
    }

    /// Event `seq` for tenant `seq % tenants` (license `tenant_id`).
    pub fn tenants(tenants: usize) -> Events {
        assert!(
            (1..90_000).contains(&tenants),
            "tenant ids have five digits"
        );
        Events::build(&tenant_id(0), Some(tenants))
    }

    fn build(license: &str, tenants: Option<usize>) -> Events {
        let template = event_for(0, license).into_bytes();
        let find = |needle: &[u8]| {
            template
                .windows(needle.len())
                .position(|w| w == needle)
                .expect("the template has the marker")
                + needle.len()
        };
        let seq_at = find(b"\"id\":\"bench-");
        let visitor_at = find(b"\"id\":\"S");
        let license_at = find(b"\"license_id\":\"");
        Events {
            seq_at,
            visitor_at,
            chats: None,
            tenants: tenants.map(|n| (license_at, n)),
            template,
        }
    }

    /// Over how many chats events rotate, if they do.
    pub fn chats(&self) -> Option<usize> {
        self.chats
    }

    /// Appends event `seq` to `out`.
    pub fn render_into(&self, seq: usize, out: &mut BytesMut) {
        let start = out.len();
        out.put_slice(&self.template);
        let body = &mut out[start..];
        let chat = self.chats.map_or(seq, |n| seq % n);
        put_digits(body, self.seq_at, SEQ_DIGITS, chat);
        put_digits(body, self.visitor_at, VISITOR_DIGITS, VISITOR_BASE + seq);
        if let Some((at, n)) = self.tenants {
            put_digits(body, at, TENANT_DIGITS, TENANT_BASE + seq % n);
        }
    }

    /// Event `seq` alone, or events `seqs` as a JSON array (a batch).
    pub fn body(&self, seqs: std::ops::Range<usize>, batch: bool) -> Bytes {
        let mut out = BytesMut::with_capacity((self.template.len() + 1) * seqs.len() + 2);
        if !batch {
            self.render_into(seqs.start, &mut out);
            return out.freeze();
        }
        out.put_u8(b'[');
        for seq in seqs {
            if out.len() > 1 {
                out.put_u8(b',');
            }
            self.render_into(seq, &mut out);
        }
        out.put_u8(b']');
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_renders_what_format_does() {
        let one = Events::single();
        for seq in [0, 7, 123_456, 999_999_999] {
            assert_eq!(
                one.body(seq..seq + 1, false),
                event_for(seq, crate::process::LICENSE).as_bytes()
            );
        }
        let many = Events::tenants(2_000);
        assert_eq!(
            many.body(4_003..4_004, false),
            event_for(4_003, &tenant_id(3)).as_bytes()
        );
        let batch = many.body(1_999..2_001, true);
        let expected = format!(
            "[{},{}]",
            event_for(1_999, &tenant_id(1_999)),
            event_for(2_000, &tenant_id(0))
        );
        assert_eq!(batch, expected.as_bytes());
        let chats = Events::over_chats(1_000);
        assert_eq!(
            chats.body(123_456..123_457, false),
            event_in_chat(123_456, 456, crate::process::LICENSE).as_bytes()
        );
    }
}
