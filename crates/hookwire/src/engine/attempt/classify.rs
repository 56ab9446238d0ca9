//! What an attempt's ending means: acknowledged, or which failure, and
//! whether retrying it can help.
//!
//! Failures are typed so the dispatcher decides on variants rather than on
//! text; the text recorded in the delivery log (which the web app and the API
//! show, and tests compare) comes from their `Display`, built only when the
//! record is. The status rules are pure functions of the status and the
//! `acknowledge` setting.

use crate::config::Acknowledge;
use crate::engine::ssrf;
use std::fmt;
use std::time::Duration;

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// An answer that is not an acknowledgement (nor a redirect, nor 410).
    Status(u16),
    /// A 3xx answer: redirects are never followed, so it acknowledges nothing.
    Redirect(u16),
    /// `410 Gone`: the receiver says this endpoint is gone for good.
    Gone,
    /// No (complete) answer within the attempt timeout.
    Timeout,
    /// No connection; the error and its causes in one line.
    Connect(String),
    /// The request failed otherwise before an answer came; the error chain.
    Request(String),
    /// The SSRF guard refused the target.
    Blocked,
    /// The stored URL no longer parses, or a stored secret cannot be decrypted.
    InvalidTarget(String),
    /// The answer started but its body broke off (a timeout stays `Timeout`).
    AnswerBroke(Broke),
}

/// How an answer that had started broke off, as the transport reported it.
/// Whatever it was, the receiver was reached, so the attempt is retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broke {
    Connect(String),
    Request(String),
    Blocked,
}

impl AttemptFailure {
    /// Every failure LiveChat would retry is retried; a target hookwire
    /// refuses to contact, or cannot parse, or that is gone, is final until
    /// someone acts.
    pub fn retryable(&self) -> bool {
        !matches!(
            self,
            AttemptFailure::Blocked | AttemptFailure::InvalidTarget(_) | AttemptFailure::Gone
        )
    }

    /// The same failure met while reading an answer's body: the attempt got
    /// an answer, so it is retried whatever broke it off.
    pub fn while_reading_answer(self) -> AttemptFailure {
        match self {
            AttemptFailure::Connect(chain) => AttemptFailure::AnswerBroke(Broke::Connect(chain)),
            AttemptFailure::Request(chain) => AttemptFailure::AnswerBroke(Broke::Request(chain)),
            AttemptFailure::Blocked => AttemptFailure::AnswerBroke(Broke::Blocked),
            other => other,
        }
    }
}

/// The text kept in the delivery log's `error`.
impl fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AttemptFailure::Status(status) => write!(f, "HTTP {status}"),
            AttemptFailure::Redirect(status) => {
                write!(f, "HTTP {status}: redirects are not followed")
            }
            AttemptFailure::Gone => f.write_str("HTTP 410: the receiver is gone"),
            AttemptFailure::Timeout => f.write_str("timed out"),
            AttemptFailure::Connect(chain) | AttemptFailure::AnswerBroke(Broke::Connect(chain)) => {
                write!(f, "connection failed: {chain}")
            }
            AttemptFailure::Request(chain) | AttemptFailure::AnswerBroke(Broke::Request(chain)) => {
                write!(f, "request failed: {chain}")
            }
            AttemptFailure::Blocked | AttemptFailure::AnswerBroke(Broke::Blocked) => {
                f.write_str(ssrf::REFUSED)
            }
            AttemptFailure::InvalidTarget(why) => f.write_str(why),
        }
    }
}

/// A failed attempt: why, the answer's status if one came, and what it asked
/// for in `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub cause: AttemptFailure,
    /// Also set for an answer that broke off, or timed out, part way.
    pub status: Option<u16>,
    /// What a `429` or `503` asked for in `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Failure {
    /// A failure without an answer, or before its status was looked at.
    pub fn new(cause: AttemptFailure) -> Self {
        Failure {
            cause,
            status: None,
            retry_after: None,
        }
    }

    pub fn retryable(&self) -> bool {
        self.cause.retryable()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.cause.fmt(f)
    }
}

/// What an answer's status means for its delivery: `Ok` if it acknowledges
/// it under `acknowledge` (`"200"`: only 200; `"2xx"`: any 2xx), else why not.
pub fn classify_status(acknowledge: Acknowledge, status: u16) -> Result<(), AttemptFailure> {
    if acknowledge.accepts(status) {
        Ok(())
    } else if status == 410 {
        Err(AttemptFailure::Gone)
    } else if (300..400).contains(&status) {
        Err(AttemptFailure::Redirect(status))
    } else {
        Err(AttemptFailure::Status(status))
    }
}

/// Whether an answer's `Retry-After` is honoured: only `429 Too Many Requests`
/// and `503 Service Unavailable` ask for a delay that way.
pub fn reads_retry_after(status: u16) -> bool {
    status == 429 || status == 503
}

#[cfg(test)]
mod tests {
    use super::*;
    use AttemptFailure::*;

    #[test]
    fn only_200_acknowledges_by_default() {
        let ack = Acknowledge::Only200;
        assert_eq!(classify_status(ack, 200), Ok(()));
        for status in [201, 202, 204, 299] {
            assert_eq!(classify_status(ack, status), Err(Status(status)));
        }
    }

    #[test]
    fn any_2xx_acknowledges_when_configured() {
        let ack = Acknowledge::AnySuccess;
        for status in [200, 201, 204, 299] {
            assert_eq!(classify_status(ack, status), Ok(()));
        }
        assert_eq!(classify_status(ack, 199), Err(Status(199)));
        assert_eq!(classify_status(ack, 300), Err(Redirect(300)));
    }

    #[test]
    fn redirects_gone_and_errors() {
        for ack in [Acknowledge::Only200, Acknowledge::AnySuccess] {
            for status in [301, 302, 307, 308, 399] {
                assert_eq!(classify_status(ack, status), Err(Redirect(status)));
            }
            assert_eq!(classify_status(ack, 410), Err(Gone));
            for status in [100, 400, 404, 409, 429, 500, 503, 599] {
                assert_eq!(classify_status(ack, status), Err(Status(status)));
            }
        }
    }

    #[test]
    fn only_gone_blocked_and_invalid_targets_are_final() {
        for retried in [
            Status(500),
            Status(404),
            Status(204),
            Redirect(302),
            Timeout,
            Connect("refused".into()),
            Request("reset".into()),
            AnswerBroke(Broke::Request("reset".into())),
            AnswerBroke(Broke::Connect("reset".into())),
            AnswerBroke(Broke::Blocked),
        ] {
            assert!(retried.retryable(), "{retried:?}");
        }
        for final_ in [Gone, Blocked, InvalidTarget("bad url".into())] {
            assert!(!final_.retryable(), "{final_:?}");
        }
    }

    #[test]
    fn a_broken_answer_is_retried_and_reads_the_same() {
        let cases = [
            (Timeout, Timeout),
            (Request("x".into()), AnswerBroke(Broke::Request("x".into()))),
            (Connect("x".into()), AnswerBroke(Broke::Connect("x".into()))),
            (Blocked, AnswerBroke(Broke::Blocked)),
        ];
        for (before, after) in cases {
            let text = before.to_string();
            let broke = before.while_reading_answer();
            assert_eq!(broke, after);
            assert!(broke.retryable());
            assert_eq!(broke.to_string(), text);
        }
    }

    #[test]
    fn logged_text_is_unchanged() {
        assert_eq!(Status(500).to_string(), "HTTP 500");
        assert_eq!(
            Redirect(302).to_string(),
            "HTTP 302: redirects are not followed"
        );
        assert_eq!(Gone.to_string(), "HTTP 410: the receiver is gone");
        assert_eq!(Timeout.to_string(), "timed out");
        assert_eq!(
            Connect("tcp connect error: refused".into()).to_string(),
            "connection failed: tcp connect error: refused"
        );
        assert_eq!(Request("reset".into()).to_string(), "request failed: reset");
        assert_eq!(Blocked.to_string(), ssrf::REFUSED);
        assert_eq!(InvalidTarget("bad".into()).to_string(), "bad");
        let f = Failure {
            cause: Status(503),
            status: Some(503),
            retry_after: Some(Duration::from_secs(5)),
        };
        assert_eq!(f.to_string(), "HTTP 503");
    }

    #[test]
    fn retry_after_is_read_for_429_and_503_only() {
        assert!(reads_retry_after(429));
        assert!(reads_retry_after(503));
        for status in [200, 302, 410, 500, 502, 504] {
            assert!(!reads_retry_after(status));
        }
    }
}
