//! HTML building blocks: escaping, the page layout, times, and the overview's
//! inline SVG charts. Everything user-supplied goes through [`esc`].

use super::session::Session;
use crate::api::views::rfc3339;
use crate::store::Millis;
use std::fmt::Write as _;

/// Escapes text for HTML content and double-quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query-string value.
pub fn qs(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A time as UTC ISO 8601 in `<time>`; the page script shows it in the viewer's zone.
pub fn time(ms: Millis) -> String {
    let iso = rfc3339(ms);
    format!(r#"<time datetime="{iso}">{iso}</time>"#)
}

/// A hidden input carrying the session's CSRF token.
pub fn csrf_field(session: &Session) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        esc(&session.csrf)
    )
}

/// A short human duration ("3 s", "5 min", "2 h").
pub fn duration(ms: Millis) -> String {
    let s = ms.max(0) / 1000;
    if s < 60 {
        format!("{s} s")
    } else if s < 3600 {
        format!("{} min", s / 60)
    } else if s < 86_400 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else {
        format!("{} d {} h", s / 86_400, (s % 86_400) / 3600)
    }
}

/// The navigation entries: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/ui/overview", "Overview"),
    ("/ui/webhooks", "Webhooks"),
    ("/ui/v3-webhooks", "v3 webhooks"),
    ("/ui/deliveries", "Delivery log"),
    ("/ui/agents", "Agent view"),
];

/// What the layout needs besides the page's own content.
pub struct Chrome<'a> {
    pub session: &'a Session,
    /// Every license, for an operator's switcher.
    pub licenses: &'a [String],
    /// The nav entry to mark as current.
    pub active: &'a str,
}

/// A whole page for a signed-in user.
pub fn page(title: &str, chrome: &Chrome<'_>, body: &str) -> String {
    let mut nav = String::new();
    for (path, label) in NAV {
        let current = if *path == chrome.active {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(nav, r#"<li><a href="{path}"{current}>{label}</a></li>"#);
    }
    let session = chrome.session;
    let mut who = String::new();
    if session.operator {
        let mut options = String::from(r#"<option value="">Choose a license</option>"#);
        for l in chrome.licenses {
            let sel = if session.license.as_deref() == Some(l.as_str()) {
                " selected"
            } else {
                ""
            };
            let _ = write!(options, r#"<option value="{0}"{sel}>{0}</option>"#, esc(l));
        }
        let current = if chrome.active == "/ui/licenses" {
            r#" aria-current="page""#
        } else {
            ""
        };
        let _ = write!(
            who,
            r#"<form method="post" action="/ui/license" class="switch">{csrf}<label for="license-switch">Operator: license</label> <select id="license-switch" name="license_id">{options}</select> <button type="submit">Switch</button></form> <a href="/ui/licenses"{current}>Licenses</a>"#,
            csrf = csrf_field(session),
        );
    } else if let Some(l) = &session.license {
        let _ = write!(who, "<span>License {}</span>", esc(l));
    }
    let _ = write!(
        who,
        r#" <form method="post" action="/ui/logout" class="inline">{}<button type="submit">Sign out</button></form>"#,
        csrf_field(session)
    );
    document(
        title,
        &format!(
            r#"<header class="top"><a class="brand" href="/ui/overview">hookwire</a><nav aria-label="Main"><ul>{nav}</ul></nav><div class="who">{who}</div></header><main id="main"><h1>{title}</h1>{body}</main>"#,
            title = esc(title)
        ),
    )
}

/// The HTML document around any body.
pub fn document(title: &str, body: &str) -> String {
    format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{} · hookwire</title><link rel="stylesheet" href="/ui/assets/ui.css"><script src="/ui/assets/ui.js" defer></script></head><body><a class="skip" href="#main">Skip to content</a>{body}</body></html>"##,
        esc(title)
    )
}

/// A notice box: `kind` is `ok`, `warn` or `error`.
pub fn notice(kind: &str, text_html: &str) -> String {
    let role = if kind == "error" { "alert" } else { "status" };
    format!(r#"<div class="notice {kind}" role="{role}">{text_html}</div>"#)
}

/// The `q`-quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

/// A stacked bar chart of delivered (ok) and failed counts per bucket, as
/// inline SVG with a text summary for screen readers.
pub fn bar_chart(
    label: &str,
    buckets: &[(u64, u64)],
    bucket_label: &dyn Fn(usize) -> String,
) -> String {
    const W: f64 = 600.0;
    const H: f64 = 140.0;
    /// Room above the bars for the scale.
    const TOP: f64 = 14.0;
    let max = buckets.iter().map(|(o, f)| o + f).max().unwrap_or(0).max(1) as f64;
    let bw = W / buckets.len().max(1) as f64;
    let (total_ok, total_failed) = buckets.iter().fold((0, 0), |(a, b), (o, f)| (a + o, b + f));
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 -{TOP} {W} {h}" role="img" aria-label="{label}: {total_ok} delivered, {total_failed} failed"><title>{label}</title><line x1="0" y1="{H}" x2="{W}" y2="{H}" class="axis"/>"#,
        h = H + 16.0 + TOP,
        label = esc(label)
    );
    for (i, (ok, failed)) in buckets.iter().enumerate() {
        let x = i as f64 * bw;
        let hok = *ok as f64 / max * H;
        let hf = *failed as f64 / max * H;
        let tip = format!("{}: {ok} delivered, {failed} failed", bucket_label(i));
        let _ = write!(svg, "<g><title>{}</title>", esc(&tip));
        if *ok > 0 {
            let _ = write!(
                svg,
                r#"<rect class="ok" x="{x:.1}" y="{:.1}" width="{:.1}" height="{hok:.1}"/>"#,
                H - hok,
                (bw - 1.0).max(1.0)
            );
        }
        if *failed > 0 {
            let _ = write!(
                svg,
                r#"<rect class="failed" x="{x:.1}" y="{:.1}" width="{:.1}" height="{hf:.1}"/>"#,
                H - hok - hf,
                (bw - 1.0).max(1.0)
            );
        }
        svg.push_str("</g>");
    }
    let _ = write!(
        svg,
        r#"<text x="0" y="{y}" class="tick">{first}</text><text x="{W}" y="{y}" class="tick" text-anchor="end">{last}</text><text x="0" y="-3" class="tick">max {max} per bar</text></svg>"#,
        y = H + 13.0,
        first = esc(&bucket_label(0)),
        last = esc(&bucket_label(buckets.len().saturating_sub(1))),
        max = max as u64
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc(r#"<script>alert("x")</script>&'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#39;"
        );
    }

    #[test]
    fn quantiles_by_rank() {
        let v: Vec<i64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), Some(50));
        assert_eq!(quantile(&v, 0.95), Some(95));
        assert_eq!(quantile(&[7], 0.95), Some(7));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn chart_summarises_for_screen_readers() {
        let svg = bar_chart("Last hour", &[(2, 1), (0, 0)], &|i| format!("m{i}"));
        assert!(svg.contains(r#"aria-label="Last hour: 2 delivered, 1 failed""#));
        assert!(svg.contains(r#"class="failed""#));
    }
}
