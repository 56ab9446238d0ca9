//! Secrets that never print, and the small amount of cryptography hookwire
//! needs: random keys, hashes for storage, derived tokens, constant-time checks.

mod cipher;

pub use cipher::{
    Cipher, SealedSecret, SealedTargetUrl, SEALED_PREFIX, SIGNING_SECRET, URL_PASSWORD,
    V3_SECRET_KEY,
};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fmt;

/// A secret string. `Debug` and `Display` print `****`, so a secret that ends
/// up in a log line or a panic message does not leak.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The only way to read a secret; grep for it to review every use.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// `n` random bytes from the operating system, as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

/// What is stored in place of an API key or token: its SHA-256, in hex.
/// Keys and tokens are 128+ random bits, so a fast hash is enough.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compares two secrets without leaking where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    let (a, b) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    a.ct_eq(&b).into()
}

/// HMAC-SHA256 of `message` under `key`.
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// A new event's unique id: 32 lowercase hex characters, the first 12 the
/// milliseconds since the epoch, the other 20 random (80 bits). Ids from one
/// node sort by time, so the `events.unique_id` index grows at its end
/// instead of dirtying a random leaf page per event.
pub fn new_event_id() -> String {
    new_event_id_at(crate::store::now_millis())
}

fn new_event_id_at(millis: i64) -> String {
    let mut random = [0u8; 10];
    fill_from_pool(&mut random);
    // 48 bits of milliseconds last until the year 10889.
    format!(
        "{:012x}{}",
        millis.max(0) & 0xffff_ffff_ffff,
        hex::encode(random)
    )
}

/// Bytes the operating system's random source gave, taken a few at a time:
/// one `getrandom` call per event id was a system call per ingested event.
/// Only for event ids, which must be unique, not secret (the token is a MAC
/// of the id); keys and secrets come from [`random_hex`] directly.
fn fill_from_pool(out: &mut [u8]) {
    const POOL: usize = 4096;
    thread_local! {
        static RANDOM: std::cell::RefCell<(Box<[u8; POOL]>, usize)> =
            std::cell::RefCell::new((Box::new([0; POOL]), POOL));
    }
    RANDOM.with_borrow_mut(|(pool, used)| {
        if *used + out.len() > POOL {
            getrandom::fill(&mut pool[..]).expect("the operating system's random source failed");
            *used = 0;
        }
        out.copy_from_slice(&pool[*used..*used + out.len()]);
        // Never handed out twice.
        pool[*used..*used + out.len()].fill(0);
        *used += out.len();
    });
}

/// Length of an event token: 32 lowercase hex, the shape LiveChat's own tokens have.
const TOKEN_HEX: usize = 32;
/// How many hex characters of an event id (its milliseconds) a token starts with.
const TOKEN_TIME_HEX: usize = 12;

/// The per-event `token`: 32 lowercase hex characters, the shape LiveChat's
/// tokens have. The first 12 are the event id's own first 12 (the
/// milliseconds it was made), the other 20 an 80-bit HMAC-SHA256 of the whole
/// id under the token secret. Deriving it means retries (even after a
/// restart) carry the same token, and nothing about it is stored: the REST
/// call-back finds the few events of that millisecond by the id index and
/// keeps the one whose MAC matches ([`token_time_prefix`], [`token_is_for`]).
pub fn event_token(token_secret: &Secret, event_unique_id: &str) -> String {
    let mac = hmac_sha256(token_secret.expose().as_bytes(), event_unique_id.as_bytes());
    let time = event_unique_id
        .get(..TOKEN_TIME_HEX)
        .unwrap_or(event_unique_id);
    format!(
        "{time}{}",
        hex::encode(&mac[..(TOKEN_HEX - TOKEN_TIME_HEX) / 2])
    )
}

/// The event-id prefix a well-shaped token points at (32 lowercase hex);
/// `None` for anything else. Tokens issued before tokens named their
/// event's time have the same shape and are looked up by their stored hash
/// when no event of "their" millisecond matches.
pub fn token_time_prefix(token: &str) -> Option<&str> {
    let hex = token.len() == TOKEN_HEX
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    hex.then(|| &token[..TOKEN_TIME_HEX])
}

/// Whether `token` is the token of event `event_unique_id` (constant time).
pub fn token_is_for(token_secret: &Secret, token: &str, event_unique_id: &str) -> bool {
    constant_time_eq(&event_token(token_secret, event_unique_id), token)
}

/// A new Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes.
pub fn new_signing_secret() -> Secret {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    Secret::new(format!("whsec_{}", STANDARD.encode(bytes)))
}

/// Whether `secret` is a Standard Webhooks secret: `whsec_` and some base64.
pub fn is_standard_webhooks_secret(secret: &str) -> bool {
    secret
        .strip_prefix("whsec_")
        .and_then(|key| STANDARD.decode(key).ok())
        .is_some_and(|key| !key.is_empty())
}

/// The Standard Webhooks signature of one message under one `whsec_` secret:
/// `v1,` + base64(HMAC-SHA256(secret bytes, "{id}.{timestamp}.{body}")).
pub fn standard_webhooks_signature(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = STANDARD.decode(secret.strip_prefix("whsec_")?).ok()?;
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&key).ok()?;
    mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        STANDARD.encode(mac.finalize().into_bytes())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookwire_livechat::TargetUrl;

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_purpose() {
        let key = Cipher::generate_key();
        let c = Cipher::from_base64(&key).unwrap();
        let sealed = c.seal(URL_PASSWORD, b"hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            c.seal(URL_PASSWORD, b"hunter2"),
            "fresh nonce each time"
        );
        assert_eq!(c.open(URL_PASSWORD, &sealed).unwrap(), b"hunter2");
        assert!(c.open(SIGNING_SECRET, &sealed).is_none());
        let other = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        assert!(other.open(URL_PASSWORD, &sealed).is_none());
        assert!(c.open(URL_PASSWORD, "hwenc1.AAAA").is_none());
        assert!(Cipher::from_base64("c2hvcnQ=").is_err());
    }

    #[test]
    fn url_passwords_round_trip_through_sealing() {
        let c = Cipher::from_base64(&Cipher::generate_key()).unwrap();
        let url = TargetUrl::parse("https://user:p%40ss@example.com/hook?q=1").unwrap();
        let stored = c.seal_url(&url);
        assert!(!stored.as_stored().contains("p%40ss"));
        let reparsed = TargetUrl::parse_stored(stored.as_stored()).unwrap();
        assert_eq!(reparsed.masked(), "https://user:****@example.com/hook?q=1");
        let opened = c.open_url(&reparsed).unwrap();
        assert_eq!(opened.credentials().unwrap().password, "p@ss");
        let plain = TargetUrl::parse("https://example.com/").unwrap();
        assert_eq!(c.seal_url(&plain).url(), &plain);
        // A stored URL written back with its password unchanged is not sealed twice.
        assert_eq!(c.seal_url(stored.url()), stored);
        let fake = TargetUrl::parse("https://u:hwenc1.AAAA@example.com/").unwrap();
        assert_ne!(c.seal_url(&fake).as_stored(), fake.as_stored());
    }

    #[test]
    fn signature_matches_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let sig = standard_webhooks_signature(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            sig.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
    }

    #[test]
    fn tokens_are_stable_distinct_and_shaped_like_livechat_ones() {
        let k = Secret::new("k");
        let id = new_event_id();
        let a = event_token(&k, &id);
        assert_eq!(a, event_token(&k, &id));
        assert_ne!(a, event_token(&k, &new_event_id()));
        assert_eq!(a.len(), 32);
        assert!(a.starts_with(&id[..12]));
        assert!(a
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn tokens_point_at_their_event_and_forgeries_do_not_match() {
        let k = Secret::new("k");
        let id = new_event_id();
        let token = event_token(&k, &id);
        assert_eq!(token_time_prefix(&token), Some(&id[..12]));
        assert!(token_is_for(&k, &token, &id));
        // The right time with a wrong MAC, or under another secret.
        let mut forged = token.clone();
        let last = if forged.ends_with('0') { "1" } else { "0" };
        forged.replace_range(31.., last);
        assert!(!token_is_for(&k, &forged, &id));
        assert!(!token_is_for(&Secret::new("other"), &token, &id));
        // Another event of the same millisecond.
        let twin = format!("{}{}", &id[..12], random_hex(10));
        assert!(!token_is_for(&k, &token, &twin));
        for junk in [
            "",
            "abc",
            &token[..31],
            &token.to_uppercase(),
            &"é".repeat(16),
        ] {
            assert_eq!(token_time_prefix(junk), None, "{junk}");
        }
    }

    #[test]
    fn event_ids_are_32_hex_and_sort_by_time() {
        let (a, b) = (
            new_event_id_at(1_700_000_000_000),
            new_event_id_at(1_700_000_000_001),
        );
        assert_eq!(a.len(), 32);
        assert!(a < b, "{a} {b}");
        assert_eq!(&a[..12], "018bcfe56800");
        assert_ne!(new_event_id_at(5)[12..], new_event_id_at(5)[12..]);
        assert!(new_event_id()
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }

    #[test]
    fn event_ids_of_one_millisecond_stay_distinct_across_pool_refills() {
        // 10,000 ids take 100,000 random bytes: the pool is refilled ~24 times.
        let ids: std::collections::HashSet<String> =
            (0..10_000).map(|_| new_event_id_at(7)).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.iter().all(|id| id[12..] != "0".repeat(20)));
    }
}
