//! HTTP basic authentication as hookwire sends it: a webhook URL of the form
//! `https://user:password@host/path` makes every delivery carry
//! `Authorization: Basic base64(user:password)`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why a request's credentials were not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the Authorization header is missing")]
    Missing,
    #[error("the Authorization header is not Basic credentials")]
    Malformed,
    #[error("wrong user name or password")]
    Wrong,
}

/// The user name and password a receiver expects.
///
/// ```
/// use hookwire_receiver::{AuthError, BasicAuth};
/// use http::HeaderMap;
///
/// let auth = BasicAuth::new("hookwire", "s3cret");
/// let mut headers = HeaderMap::new();
/// // base64("hookwire:s3cret")
/// headers.insert("authorization", "Basic aG9va3dpcmU6czNjcmV0".parse().unwrap());
/// assert_eq!(auth.check(&headers), Ok(()));
/// headers.insert("authorization", "Basic aG9va3dpcmU6d3Jvbmc=".parse().unwrap());
/// assert_eq!(auth.check(&headers), Err(AuthError::Wrong));
/// ```
#[derive(Clone)]
pub struct BasicAuth {
    // The expected `user:password`, hashed so comparing takes the same time
    // whatever the length of what was sent.
    expected: [u8; 32],
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BasicAuth(****)")
    }
}

impl BasicAuth {
    pub fn new(user: &str, password: &str) -> Self {
        BasicAuth {
            expected: Sha256::digest(format!("{user}:{password}").as_bytes()).into(),
        }
    }

    /// Checks the `Authorization` header in constant time.
    pub fn check(&self, headers: &HeaderMap) -> Result<(), AuthError> {
        let value = headers
            .get(AUTHORIZATION)
            .ok_or(AuthError::Missing)?
            .to_str()
            .map_err(|_| AuthError::Malformed)?;
        let (scheme, encoded) = value.trim().split_once(' ').ok_or(AuthError::Malformed)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(AuthError::Malformed);
        }
        let pair = STANDARD
            .decode(encoded.trim())
            .map_err(|_| AuthError::Malformed)?;
        let got: [u8; 32] = Sha256::digest(&pair).into();
        if bool::from(got.ct_eq(&self.expected)) {
            Ok(())
        } else {
            Err(AuthError::Wrong)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn checks_credentials() {
        let auth = BasicAuth::new("u", "p@ss:word");
        let good = format!("Basic {}", STANDARD.encode("u:p@ss:word"));
        assert_eq!(auth.check(&with(&good)), Ok(()));
        let lower = format!("basic {}", STANDARD.encode("u:p@ss:word"));
        assert_eq!(
            auth.check(&with(&lower)),
            Ok(()),
            "the scheme is case-insensitive"
        );
        assert_eq!(auth.check(&HeaderMap::new()), Err(AuthError::Missing));
        assert_eq!(auth.check(&with("Bearer abc")), Err(AuthError::Malformed));
        assert_eq!(auth.check(&with("Basic ***")), Err(AuthError::Malformed));
        let wrong = format!("Basic {}", STANDARD.encode("u:p@ss"));
        assert_eq!(auth.check(&with(&wrong)), Err(AuthError::Wrong));
        assert!(!format!("{auth:?}").contains("p@ss"));
    }
}
