//! The results: a table on stdout, `results.json`, and two hand-written SVG
//! bar charts (throughput as a share of the baseline, and latency
//! percentiles) that BENCHMARKS.md shows.

use serde_json::Value;
use std::fmt::Write as _;
use std::path::Path;

fn f(v: &Value) -> Option<f64> {
    v.as_f64()
}

fn mb(v: &Value) -> String {
    f(v).map_or("-".into(), |b| format!("{:.1} MB", b / 1_048_576.0))
}

/// The baseline a section's figures compare to: its own when it was
/// measured in another run (`baseline_per_s` in the section), else the run's.
fn base_of(r: &Value, section: &str) -> f64 {
    f(&r[section]["baseline_per_s"])
        .or_else(|| f(&r["baseline"]["per_s"]))
        .unwrap_or(f64::NAN)
}

/// (label, events or deliveries per second, its baseline) for the throughput chart.
fn throughputs(r: &Value) -> Vec<(String, f64, f64)> {
    let base = base_of(r, "baseline");
    let mut out = vec![("baseline (no hookwire)".to_string(), base, base)];
    for s in r["steady"].as_array().into_iter().flatten() {
        out.push((
            format!(
                "steady {} {}",
                s["backend"].as_str().unwrap_or(""),
                s["mode"].as_str().unwrap_or("")
            ),
            f(&s["delivered_per_s"]).unwrap_or(0.0),
            // Against the baseline measured next to the run, where there is one.
            f(&s["paired_baseline_per_s"]).unwrap_or(base),
        ));
    }
    if let Some(v) = f(&r["fanout"]["deliveries_per_s"]) {
        out.push(("fan-out to 100".into(), v, base_of(r, "fanout")));
    }
    if let Some(v) = f(&r["isolation"]["all_healthy_per_s"]) {
        out.push(("isolation: 20 healthy".into(), v, base_of(r, "isolation")));
    }
    if let Some(v) = f(&r["isolation"]["with_hung_per_s"]) {
        out.push(("isolation: 20 + 1 hung".into(), v, base_of(r, "isolation")));
    }
    if let Some(v) = f(&r["backlog"]["drain_per_s"]) {
        out.push(("backlog drain".into(), v, base_of(r, "backlog")));
    }
    out
}

/// (label, p50, p95, p99) in ms for the latency chart.
fn latencies(r: &Value) -> Vec<(String, f64, f64, f64)> {
    let mut out = Vec::new();
    for s in r["steady"].as_array().into_iter().flatten() {
        out.push((
            format!(
                "steady {} {}",
                s["backend"].as_str().unwrap_or(""),
                s["mode"].as_str().unwrap_or("")
            ),
            f(&s["p50_ms"]).unwrap_or(0.0),
            f(&s["p95_ms"]).unwrap_or(0.0),
            f(&s["p99_ms"]).unwrap_or(0.0),
        ));
    }
    for s in r["fixed"].as_array().into_iter().flatten() {
        out.push((
            format!("fixed {}/s sqlite", s["rate"]),
            f(&s["p50_ms"]).unwrap_or(0.0),
            f(&s["p95_ms"]).unwrap_or(0.0),
            f(&s["p99_ms"]).unwrap_or(0.0),
        ));
    }
    out
}

pub fn table(r: &Value) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<28} {:>12} {:>9}",
        "throughput", "per second", "x base"
    );
    for (label, v, base) in throughputs(r) {
        let _ = writeln!(t, "{label:<28} {v:>12.0} {:>9.3}", v / base);
    }
    let _ = writeln!(
        t,
        "(steady: x the baseline measured next to the run; others: x the run's highest baseline)"
    );
    let _ = writeln!(
        t,
        "\n{:<28} {:>9} {:>9} {:>9}",
        "latency (accepted->received)", "p50 ms", "p95 ms", "p99 ms"
    );
    for (label, a, b, c) in latencies(r) {
        let _ = writeln!(t, "{label:<28} {a:>9.2} {b:>9.2} {c:>9.2}");
    }
    for s in r["steady"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "ingest {} {}: {:.0} events/s; by round, delivered/s {:.0?} and x the baseline next to it {:.3?} (the median is reported); x the run's highest baseline {:.3}",
            s["backend"].as_str().unwrap_or(""),
            s["mode"].as_str().unwrap_or(""),
            f(&s["ingest_per_s"]).unwrap_or(0.0),
            numbers(&s["rounds_delivered_per_s"]),
            numbers(&s["rounds_paired_ratio"]),
            f(&s["ratio_to_baseline"]).unwrap_or(f64::NAN),
        );
    }
    if let Some(v) = f(&r["isolation"]["ratio"]) {
        let _ = writeln!(
            t,
            "isolation ratio (healthy with hung / all healthy, median of paired runs): {v:.2}"
        );
    }
    if !r["backlog"].is_null() {
        let b = &r["backlog"];
        let _ = writeln!(
            t,
            "backlog {}: drain {:.0}/s ({} x steady batch), peak RSS {}",
            b["deliveries"],
            f(&b["drain_per_s"]).unwrap_or(0.0),
            f(&b["drain_vs_steady"]).map_or("-".into(), |v| format!("{v:.2}")),
            mb(&b["peak_rss_bytes"])
        );
    }
    if !r["footprint"].is_null() {
        let p = &r["footprint"];
        let _ = writeln!(
            t,
            "footprint: idle RSS {}, RSS under steady load {}, database {:.0} bytes per delivered event",
            mb(&p["idle_rss_bytes"]),
            mb(&p["rss_under_steady_bytes"]),
            f(&p["db_bytes_per_event"]).unwrap_or(0.0)
        );
    }
    t
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Horizontal bars, one row per label, each with up to three values.
fn bars(title: &str, unit: &str, rows: &[(String, Vec<f64>)], legend: &[&str]) -> String {
    const COLORS: [&str; 3] = ["#4e79a7", "#f28e2b", "#e15759"];
    let (left, width, row_h) = (
        210.0,
        520.0,
        18.0 * rows.first().map_or(1, |r| r.1.len()) as f64 + 10.0,
    );
    let max = rows
        .iter()
        .flat_map(|r| r.1.iter().copied())
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let height = 60.0 + row_h * rows.len() as f64 + 30.0;
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        esc(title),
        w = left + width + 110.0
    );
    for (i, name) in legend.iter().enumerate() {
        let x = left + i as f64 * 90.0;
        let _ = writeln!(s, "<rect x=\"{x}\" y=\"30\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"39\">{}</text>", COLORS[i], x + 14.0, esc(name));
    }
    for (r, (label, values)) in rows.iter().enumerate() {
        let y = 55.0 + r as f64 * row_h;
        let _ = writeln!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            left - 6.0,
            y + row_h / 2.0,
            esc(label)
        );
        for (k, v) in values.iter().enumerate() {
            let w = (v / max * width).max(1.0);
            let by = y + k as f64 * 18.0;
            let _ = writeln!(
                s,
                "<rect x=\"{left}\" y=\"{by}\" width=\"{w:.1}\" height=\"15\" fill=\"{}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                COLORS[k % 3],
                left + w + 4.0,
                by + 12.0,
                esc(&format!("{v:.2} {unit}").replace(".00 ", " "))
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

pub fn write(dir: &Path, r: &Value, smoke: bool) -> std::io::Result<()> {
    print!("{}", table(r));
    if smoke {
        // The smoke run proves completeness, not speed; keep the committed figures.
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    let rows: Vec<(String, Vec<f64>)> = throughputs(r)
        .into_iter()
        .map(|(l, v, base)| (format!("{l} ({v:.0}/s)"), vec![v / base]))
        .collect();
    std::fs::write(
        dir.join("throughput.svg"),
        bars(
            "Deliveries per second, as a share of the baseline",
            "x",
            &rows,
            &["x baseline"],
        ),
    )?;
    let rows: Vec<(String, Vec<f64>)> = latencies(r)
        .into_iter()
        .map(|(l, a, b, c)| (l, vec![a, b, c]))
        .collect();
    std::fs::write(
        dir.join("latency.svg"),
        bars(
            "End-to-end latency (ingest accepted -> receiver got it)",
            "ms",
            &rows,
            &["p50", "p95", "p99"],
        ),
    )?;
    eprintln!(
        "wrote {}/results.json, throughput.svg, latency.svg",
        dir.display()
    );
    Ok(())
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}
