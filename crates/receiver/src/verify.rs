//! Standard Webhooks signature verification, exactly as hookwire signs:
//! `v1,` + base64(HMAC-SHA256(secret, "{webhook-id}.{webhook-timestamp}.{body}")),
//! where the secret is `whsec_` + base64 of its bytes. During a rotation the
//! header carries one signature per secret in force, space-separated.

use crate::{WEBHOOK_ID, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far a webhook's timestamp may be from the receiver's clock (either
/// way) before it is refused as a possible replay: five minutes, as the
/// Standard Webhooks specification recommends.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(300);

/// Why a webhook's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("the {0} header is missing")]
    MissingHeader(&'static str),
    #[error("the {0} header is not valid")]
    InvalidHeader(&'static str),
    #[error("the timestamp is {0} seconds away from now, more than the tolerance")]
    TimestampOutOfTolerance(i64),
    #[error("no signature matches the body under any known secret")]
    NoMatchingSignature,
    #[error("a signing secret must be whsec_ followed by base64")]
    InvalidSecret,
}

/// Checks Standard Webhooks signatures against one or more `whsec_` secrets.
///
/// Keep the old secret in the verifier while you roll out a new one; hookwire
/// itself signs with both during its rotation grace period, so either works.
///
/// ```
/// use hookwire_receiver::{Verifier, VerifyError};
///
/// let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// let new = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCEhIQ==";
/// let verifier = Verifier::new(new).unwrap().with_secret(old).unwrap();
/// let body = b"{}";
/// let signed_by_old = Verifier::new(old).unwrap().sign("msg_1", 1_700_000_000, body);
/// assert!(verifier.verify_at("msg_1", "1700000000", &signed_by_old, body, 1_700_000_100).is_ok());
/// // Five minutes late: refused.
/// assert_eq!(
///     verifier.verify_at("msg_1", "1700000000", &signed_by_old, body, 1_700_000_301),
///     Err(VerifyError::TimestampOutOfTolerance(-301)),
/// );
/// ```
#[derive(Clone)]
pub struct Verifier {
    keys: Vec<Vec<u8>>,
    tolerance: Duration,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Secrets never print.
        f.debug_struct("Verifier")
            .field("secrets", &self.keys.len())
            .field("tolerance", &self.tolerance)
            .finish()
    }
}

fn decode_secret(secret: &str) -> Result<Vec<u8>, VerifyError> {
    let b64 = secret
        .trim()
        .strip_prefix("whsec_")
        .ok_or(VerifyError::InvalidSecret)?;
    let key = STANDARD
        .decode(b64)
        .map_err(|_| VerifyError::InvalidSecret)?;
    if key.is_empty() {
        return Err(VerifyError::InvalidSecret);
    }
    Ok(key)
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Verifier {
    /// A verifier for one `whsec_...` secret, with [`DEFAULT_TOLERANCE`].
    pub fn new(secret: &str) -> Result<Self, VerifyError> {
        Ok(Verifier {
            keys: vec![decode_secret(secret)?],
            tolerance: DEFAULT_TOLERANCE,
        })
    }

    /// Also accepts signatures made with `secret` (for rotations).
    pub fn with_secret(mut self, secret: &str) -> Result<Self, VerifyError> {
        self.keys.push(decode_secret(secret)?);
        Ok(self)
    }

    /// How far the timestamp may be from now, either way.
    pub fn with_tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance = tolerance;
        self
    }

    fn mac(key: &[u8], msg_id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
        mac.update(msg_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The `webhook-signature` value hookwire would send for this message,
    /// signed with every secret (first one first). For tests and tools.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
        let ts = timestamp.to_string();
        self.keys
            .iter()
            .map(|k| {
                let tag = Self::mac(k, msg_id, &ts, body).finalize().into_bytes();
                format!("v1,{}", STANDARD.encode(tag))
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Verifies a request's headers and raw body against the current time.
    pub fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), VerifyError> {
        let header = |name: &'static str| {
            headers
                .get(name)
                .ok_or(VerifyError::MissingHeader(name))?
                .to_str()
                .map_err(|_| VerifyError::InvalidHeader(name))
        };
        self.verify_at(
            header(WEBHOOK_ID)?,
            header(WEBHOOK_TIMESTAMP)?,
            header(WEBHOOK_SIGNATURE)?,
            body,
            now_unix(),
        )
    }

    /// Verifies the three header values and the raw body as of `now` (Unix
    /// seconds). The body must be the bytes as received, before any parsing.
    pub fn verify_at(
        &self,
        msg_id: &str,
        timestamp: &str,
        signatures: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), VerifyError> {
        let ts: i64 = timestamp
            .trim()
            .parse()
            .map_err(|_| VerifyError::InvalidHeader(WEBHOOK_TIMESTAMP))?;
        let skew = ts.saturating_sub(now);
        if skew.unsigned_abs() > self.tolerance.as_secs() {
            return Err(VerifyError::TimestampOutOfTolerance(skew));
        }
        let candidates: Vec<Vec<u8>> = signatures
            .split_whitespace()
            .filter_map(|s| s.strip_prefix("v1,"))
            .filter_map(|b64| STANDARD.decode(b64).ok())
            .collect();
        if candidates.is_empty() {
            return Err(VerifyError::InvalidHeader(WEBHOOK_SIGNATURE));
        }
        for key in &self.keys {
            for candidate in &candidates {
                // `verify_slice` compares in constant time.
                if Self::mac(key, msg_id, timestamp.trim(), body)
                    .verify_slice(candidate)
                    .is_ok()
                {
                    return Ok(());
                }
            }
        }
        Err(VerifyError::NoMatchingSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const OTHER: &str = "whsec_b3RoZXIgc2VjcmV0IGJ5dGVzIGZvciB0ZXN0cw==";

    #[test]
    fn accepts_the_specification_example() {
        let v = Verifier::new(SPEC_SECRET).unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert_eq!(
            v.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            sig
        );
        v.verify_at(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
            sig,
            body,
            1614265330,
        )
        .unwrap();
    }

    #[test]
    fn tampering_is_refused() {
        let v = Verifier::new(SPEC_SECRET).unwrap();
        let sig = v.sign("id1", 100, b"{\"a\":1}");
        let no = Err(VerifyError::NoMatchingSignature);
        assert_eq!(v.verify_at("id1", "100", &sig, b"{\"a\":2}", 100), no);
        assert_eq!(v.verify_at("id2", "100", &sig, b"{\"a\":1}", 100), no);
        assert_eq!(v.verify_at("id1", "101", &sig, b"{\"a\":1}", 100), no);
        let other = Verifier::new(OTHER).unwrap();
        assert_eq!(other.verify_at("id1", "100", &sig, b"{\"a\":1}", 100), no);
        // A flipped bit in the signature itself.
        let mut bad = sig.clone().into_bytes();
        let last = bad.len() - 2;
        bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert_eq!(v.verify_at("id1", "100", &bad, b"{\"a\":1}", 100), no);
        assert_eq!(
            v.verify_at("id1", "100", "v2,abc", b"{\"a\":1}", 100),
            Err(VerifyError::InvalidHeader(WEBHOOK_SIGNATURE))
        );
        assert_eq!(
            v.verify_at("id1", "soon", &sig, b"{\"a\":1}", 100),
            Err(VerifyError::InvalidHeader(WEBHOOK_TIMESTAMP))
        );
    }

    #[test]
    fn timestamps_outside_the_tolerance_are_refused() {
        let v = Verifier::new(SPEC_SECRET)
            .unwrap()
            .with_tolerance(Duration::from_secs(60));
        let sig = v.sign("id", 1000, b"x");
        assert!(v.verify_at("id", "1000", &sig, b"x", 1060).is_ok());
        assert!(v.verify_at("id", "1000", &sig, b"x", 940).is_ok());
        assert_eq!(
            v.verify_at("id", "1000", &sig, b"x", 1061),
            Err(VerifyError::TimestampOutOfTolerance(-61))
        );
        assert_eq!(
            v.verify_at("id", "1000", &sig, b"x", 939),
            Err(VerifyError::TimestampOutOfTolerance(61))
        );
    }

    #[test]
    fn rotation_headers_with_several_signatures_verify() {
        // hookwire during a rotation: new secret first, old one after it.
        let both = Verifier::new(OTHER)
            .unwrap()
            .with_secret(SPEC_SECRET)
            .unwrap();
        let header = both.sign("id", 5, b"body");
        assert_eq!(header.split(' ').count(), 2);
        // A receiver that still only knows the old secret accepts it...
        let old_only = Verifier::new(SPEC_SECRET).unwrap();
        assert!(old_only.verify_at("id", "5", &header, b"body", 5).is_ok());
        // ...and one that already switched to the new secret too.
        let new_only = Verifier::new(OTHER).unwrap();
        assert!(new_only.verify_at("id", "5", &header, b"body", 5).is_ok());
        // A receiver with both accepts a header signed by either alone.
        let old_sig = old_only.sign("id", 5, b"body");
        assert!(both.verify_at("id", "5", &old_sig, b"body", 5).is_ok());
        // Unknown versions are skipped, not fatal.
        let mixed = format!("v9,zzz {old_sig}");
        assert!(old_only.verify_at("id", "5", &mixed, b"body", 5).is_ok());
    }

    #[test]
    fn bad_secrets_and_missing_headers_are_reported() {
        assert_eq!(
            Verifier::new("MfKQ9r8").unwrap_err(),
            VerifyError::InvalidSecret
        );
        assert_eq!(
            Verifier::new("whsec_!!").unwrap_err(),
            VerifyError::InvalidSecret
        );
        let v = Verifier::new(SPEC_SECRET).unwrap();
        assert_eq!(
            v.verify(&HeaderMap::new(), b""),
            Err(VerifyError::MissingHeader(WEBHOOK_ID))
        );
        assert!(!format!("{v:?}").contains("MfKQ"));
    }
}
