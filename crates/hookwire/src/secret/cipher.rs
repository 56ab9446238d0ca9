//! Encryption at rest, and the sealed types the store accepts.
//!
//! A webhook URL reaches the store only as a [`SealedTargetUrl`] and a
//! signing secret only as a [`SealedSecret`]. Their fields are private to
//! this module and only [`Cipher`] makes them, so code that tries to store a
//! password in the clear does not compile.

use super::Secret;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hookwire_livechat::TargetUrl;
use std::fmt;

/// What marks a value as sealed by [`Cipher`]: the URL-safe prefix of
/// `hwenc1.<base64url(nonce || ciphertext)>`.
pub const SEALED_PREFIX: &str = "hwenc1.";

/// Encryption at rest: XChaCha20-Poly1305 under the 32-byte `encryption_key`.
/// Each value gets a random 192-bit nonce, and a `purpose` bound in as
/// associated data, so a sealed URL password cannot pass for a signing secret.
#[derive(Clone)]
pub struct Cipher {
    aead: XChaCha20Poly1305,
}

impl fmt::Debug for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cipher(****)")
    }
}

/// Purposes (associated data) of sealed values.
pub const URL_PASSWORD: &str = "url-password";
pub const SIGNING_SECRET: &str = "signing-secret";
/// A LiveChat v3 webhook's `secret_key`, which its deliveries carry.
pub const V3_SECRET_KEY: &str = "v3-secret-key";

impl Cipher {
    pub fn new(key: &[u8; 32]) -> Self {
        Cipher {
            aead: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// A key as configured: 32 bytes in standard base64.
    pub fn from_base64(text: &str) -> Result<Self, String> {
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| "encryption_key must be 32 bytes in base64".to_string())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "encryption_key must be 32 bytes in base64".to_string())?;
        Ok(Cipher::new(&key))
    }

    /// A fresh random key, in the base64 form `from_base64` reads.
    pub fn generate_key() -> String {
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).expect("the operating system's random source failed");
        STANDARD.encode(key)
    }

    /// Seals any value for `purpose`. The store takes only the typed forms
    /// ([`Cipher::seal_url`], [`Cipher::seal_signing_secret`]).
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).expect("the operating system's random source failed");
        let sealed = self
            .aead
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: purpose.as_bytes(),
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", URL_SAFE_NO_PAD.encode(out))
    }

    /// The plaintext of a sealed value; `None` if it is not one, was sealed
    /// for another purpose or under another key, or was tampered with.
    pub fn open(&self, purpose: &str, sealed: &str) -> Option<Vec<u8>> {
        let bytes = URL_SAFE_NO_PAD
            .decode(sealed.strip_prefix(SEALED_PREFIX)?)
            .ok()?;
        if bytes.len() < 24 {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(24);
        self.aead
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: purpose.as_bytes(),
                },
            )
            .ok()
    }

    /// The URL to store: its password, if any, sealed. The sealed form is
    /// URL-safe, so the stored URL still parses and masks like any other.
    /// A password that opens under this key already (a stored URL written
    /// back with its password unchanged) is kept rather than sealed twice.
    pub fn seal_url(&self, url: &TargetUrl) -> SealedTargetUrl {
        SealedTargetUrl(match url.raw_password() {
            Some(password) if self.open(URL_PASSWORD, password).is_none() => url
                .with_password(&self.seal(URL_PASSWORD, password.as_bytes()))
                .unwrap_or_else(|| url.clone()),
            _ => url.clone(),
        })
    }

    /// A signing secret as the store keeps it.
    pub fn seal_signing_secret(&self, secret: &Secret) -> SealedSecret {
        SealedSecret(self.seal(SIGNING_SECRET, secret.expose().as_bytes()))
    }

    /// A v3 webhook's `secret_key` as the store keeps it.
    pub fn seal_v3_secret_key(&self, secret: &Secret) -> SealedSecret {
        SealedSecret(self.seal(V3_SECRET_KEY, secret.expose().as_bytes()))
    }

    /// The URL to send to: its password opened. A password stored before
    /// encryption existed (no [`SEALED_PREFIX`]) is used as it is.
    pub fn open_url(&self, url: &TargetUrl) -> Result<TargetUrl, String> {
        let Some(password) = url.raw_password().filter(|p| p.starts_with(SEALED_PREFIX)) else {
            return Ok(url.clone());
        };
        let plain = self
            .open(URL_PASSWORD, password)
            .and_then(|p| String::from_utf8(p).ok())
            .ok_or("the URL's stored password cannot be decrypted (was encryption_key changed?)")?;
        url.with_password(&plain)
            .ok_or_else(|| "the URL's password cannot be restored".to_string())
    }
}

/// A webhook URL whose password, if it has one, is sealed: the only form of
/// a URL the store writes. Made by [`Cipher::seal_url`] alone.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedTargetUrl(TargetUrl);

impl SealedTargetUrl {
    /// The text the store keeps: it parses with [`TargetUrl::parse_stored`]
    /// and masks like any other URL.
    pub fn as_stored(&self) -> &str {
        self.0.as_stored()
    }

    /// The URL as stored, for reading back (masking, the host).
    pub fn url(&self) -> &TargetUrl {
        &self.0
    }

    pub fn into_url(self) -> TargetUrl {
        self.0
    }
}

impl fmt::Debug for SealedTargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealedTargetUrl({})", self.0.masked())
    }
}

/// A signing secret sealed for storage: the only form the store accepts.
/// Made by [`Cipher::seal_signing_secret`] alone.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret(String);

impl SealedSecret {
    /// The `hwenc1.` text the store keeps.
    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedSecret(****)")
    }
}
