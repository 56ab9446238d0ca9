//! Webhook target URLs: validation, the credentials they may carry, and the
//! masked form that is the only one ever shown back.

use crate::ValidationError;
use percent_encoding::percent_decode_str;
use url::Url;

/// The longest target URL accepted.
pub const MAX_URL_LEN: usize = 500;

/// A validated absolute `http`/`https` URL, possibly with `user:password@`.
#[derive(Clone, PartialEq, Eq)]
pub struct TargetUrl {
    url: Url,
}

/// Basic-auth credentials taken from a URL, percent-decoded.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({:?}, ****)", self.user)
    }
}

impl TargetUrl {
    pub fn parse(input: &str) -> Result<Self, ValidationError> {
        if input.trim().len() > MAX_URL_LEN {
            return Err(ValidationError::new("url", "is longer than 500 characters"));
        }
        Self::parse_stored(input)
    }

    /// Parses a URL as stored: every check of [`TargetUrl::parse`] but the
    /// length limit, which a password encrypted at rest may push past.
    pub fn parse_stored(input: &str) -> Result<Self, ValidationError> {
        let err = |msg: &str| ValidationError::new("url", msg);
        let input = input.trim();
        if input.is_empty() {
            return Err(err("is required"));
        }
        let url = Url::parse(input).map_err(|e| {
            err(&format!(
                "must be an absolute http:// or https:// URL ({e})"
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(err("must be an absolute http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(err("must name a host"));
        }
        if url.fragment().is_some() {
            return Err(err("must not carry a #fragment"));
        }
        Ok(TargetUrl { url })
    }

    /// The URL as configured, credentials included: for storage only.
    pub fn as_stored(&self) -> &str {
        self.url.as_str()
    }

    /// The URL to send to: no credentials, so they never reach a request line.
    pub fn without_credentials(&self) -> Url {
        let mut url = self.url.clone();
        // Cannot fail for http(s) URLs with a host, which parse() guarantees.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url
    }

    /// The same URL with its password replaced (stored encrypted, for one).
    /// `None` when the URL has no password to replace.
    pub fn with_password(&self, password: &str) -> Option<TargetUrl> {
        self.url.password()?;
        let mut url = self.url.clone();
        url.set_password(Some(password)).ok()?;
        Some(TargetUrl { url })
    }

    /// The password as written in the URL, still percent-encoded.
    pub fn raw_password(&self) -> Option<&str> {
        self.url.password()
    }

    pub fn credentials(&self) -> Option<Credentials> {
        let user = self.url.username();
        let password = self.url.password();
        if user.is_empty() && password.is_none() {
            return None;
        }
        let decode = |s: &str| percent_decode_str(s).decode_utf8_lossy().into_owned();
        Some(Credentials {
            user: decode(user),
            password: password.map(decode).unwrap_or_default(),
        })
    }

    /// The URL with any password replaced by `****`: the only form shown back.
    pub fn masked(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("****"));
        }
        url.to_string()
    }

    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
}

impl std::fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TargetUrl({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_decoded_and_masked() {
        let t = TargetUrl::parse("https://user:p%40ss@hooks.example.com/path?q=1").unwrap();
        let c = t.credentials().unwrap();
        assert_eq!((c.user.as_str(), c.password.as_str()), ("user", "p@ss"));
        assert_eq!(t.masked(), "https://user:****@hooks.example.com/path?q=1");
        assert_eq!(
            t.without_credentials().as_str(),
            "https://hooks.example.com/path?q=1"
        );
        assert!(!format!("{t:?}{c:?}").contains("p@ss"));
    }

    #[test]
    fn rejects_what_is_not_absolute_http() {
        for bad in [
            "",
            "ftp://x.io",
            "/relative",
            "example.com/hook",
            "http://",
            "mailto:a@b.c",
        ] {
            assert_eq!(TargetUrl::parse(bad).unwrap_err().field, "url", "{bad}");
        }
        assert!(TargetUrl::parse(&format!("https://x.io/{}", "a".repeat(600))).is_err());
    }
}
