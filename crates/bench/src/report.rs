//! The results: a table on stdout, `results.json`, and hand-written SVG
//! charts that BENCHMARKS.md shows: two bar charts (throughput as a share
//! of the baseline, and latency percentiles) and the soak's time series.

mod ordered;

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

/// One throughput row: label, events or deliveries per second, the
/// baseline it compares to, and CPU per delivery by process.
struct Row {
    label: String,
    per_s: f64,
    base: f64,
    cpu: Value,
}

fn row(label: impl Into<String>, per_s: f64, base: f64, cpu: &Value) -> Row {
    Row {
        label: label.into(),
        per_s,
        base,
        cpu: cpu.clone(),
    }
}

/// The rows of the throughput table and chart.
fn throughputs(r: &Value) -> Vec<Row> {
    let base = base_of(r, "baseline");
    let b = &r["baseline"];
    let mut out = vec![row(
        "baseline (no hookwire)",
        base,
        base,
        &b["cpu_us_per_delivery"],
    )];
    if let Some(v) = f(&b["reqwest"]["per_s"]) {
        out.push(row(
            "baseline, reqwest generator",
            v,
            base,
            &b["reqwest"]["cpu_us_per_delivery"],
        ));
    }
    for s in r["steady"].as_array().into_iter().flatten() {
        out.push(row(
            format!(
                "steady {} {}",
                s["backend"].as_str().unwrap_or(""),
                s["mode"].as_str().unwrap_or("")
            ),
            f(&s["delivered_per_s"]).unwrap_or(0.0),
            // Against the baseline measured next to the run, where there is one.
            f(&s["paired_baseline_per_s"]).unwrap_or(base),
            &s["cpu_us_per_delivery"],
        ));
    }
    let fo = &r["fanout"];
    if let Some(v) = f(&fo["deliveries_per_s"]) {
        out.push(row(
            "fan-out to 100",
            v,
            base_of(r, "fanout"),
            &fo["cpu_us_per_delivery"],
        ));
    }
    let iso = &r["isolation"];
    if let Some(v) = f(&iso["all_healthy_per_s"]) {
        let cpu = &iso["cpu_us_per_delivery"];
        out.push(row(
            "isolation: 20 healthy",
            v,
            base_of(r, "isolation"),
            cpu,
        ));
    }
    if let Some(v) = f(&iso["with_hung_per_s"]) {
        let cpu = &iso["with_hung_cpu_us_per_delivery"];
        out.push(row(
            "isolation: 20 + 1 hung",
            v,
            base_of(r, "isolation"),
            cpu,
        ));
    }
    if let Some(v) = f(&r["backlog"]["drain_per_s"]) {
        let cpu = &r["backlog"]["cpu_us_per_delivery"];
        out.push(row("backlog drain", v, base_of(r, "backlog"), cpu));
    }
    for m in r["multitenant"]["runs"].as_array().into_iter().flatten() {
        out.push(row(
            format!("multi-tenant {}", m["mode"].as_str().unwrap_or("")),
            f(&m["deliveries_per_s"]).unwrap_or(0.0),
            base_of(r, "multitenant"),
            &m["cpu_us_per_delivery"],
        ));
    }
    out.extend(ordered::throughputs(r));
    out
}

/// A count for the table; `-` when not there.
fn count(v: &Value) -> String {
    f(v).map_or("-".into(), |v| format!("{v:.0}"))
}

/// A CPU figure for the table: microseconds, or `-` when not measured.
fn us(v: &Value) -> String {
    f(v).map_or("-".into(), |v| format!("{v:.1}"))
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
        "{:<38} {:>10} {:>7} | {:>8} {:>9} {:>8} {:>8}",
        "throughput", "per second", "x base", "hookwire", "generator", "receiver", "postgres"
    );
    for w in throughputs(r) {
        let c = &w.cpu;
        let _ = writeln!(
            t,
            "{:<38} {:>10.0} {:>7.3} | {:>8} {:>9} {:>8} {:>8}",
            w.label,
            w.per_s,
            w.per_s / w.base,
            us(&c["hookwire"]),
            us(&c["generator"]),
            us(&c["receiver"]),
            us(&c["postgres"])
        );
    }
    let _ = writeln!(
        t,
        "(CPU: microseconds per delivered event, or per request for the baselines; steady and isolation: medians of the rounds)"
    );
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
    for m in r["multitenant"]["runs"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "multi-tenant {} ({} licenses, {} webhooks, set up in {:.1} s): hookwire CPU per delivery {} x the steady run's (target <= {})",
            m["mode"].as_str().unwrap_or(""),
            m["tenants"],
            m["webhooks"],
            f(&m["setup_s"]).unwrap_or(0.0),
            f(&m["hookwire_cpu_vs_steady"]).map_or("-".into(), |v| format!("{v:.2}")),
            r["multitenant"]["target_cpu_ratio"]
        );
    }
    ordered::table(&mut t, r);
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
    if !r["soak"].is_null() {
        soak_table(&mut t, &r["soak"]);
    }
    if !r["prune"].is_null() {
        let p = &r["prune"];
        let ms = |v: &Value| f(v).map_or("-".into(), |v| format!("{v:.1} ms"));
        let _ = writeln!(
            t,
            "\nlarge prune: {} finished deliveries, {}/s offered for {} s without and {} s with the prune ({} deliveries pruned meanwhile, about {:.0} s for the whole pile); database {} before, {} after",
            p["fill"],
            p["rate"],
            p["seconds"],
            p["seconds"],
            count(&p["deliveries_pruned_during"]),
            f(&p["prune_seconds_about"]).unwrap_or(0.0),
            mb(&p["db_bytes_filled"]),
            mb(&p["db_bytes_after"]),
        );
        for (label, phase) in [("without", &p["without"]), ("with the prune", &p["with"])] {
            let _ = writeln!(
                t,
                "  {label:<15} ingest p50 {} p99 {} max {}; end to end p50 {} p99 {}",
                ms(&phase["ingest_p50_ms"]),
                ms(&phase["ingest_p99_ms"]),
                ms(&phase["ingest_max_ms"]),
                ms(&phase["end_to_end_p50_ms"]),
                ms(&phase["end_to_end_p99_ms"]),
            );
        }
        let _ = writeln!(
            t,
            "  ingest p99 with the prune <= 2 x without: {:.2} x ({})",
            f(&p["p99_factor"]).unwrap_or(f64::NAN),
            p["target"].as_str().unwrap_or("not evaluated")
        );
    }
    t
}

fn soak_table(t: &mut String, s: &Value) {
    let _ = writeln!(
        t,
        "\nsoak on {}: {}/s offered for {:.1} min ({:.0}/s achieved), retention {}, pruned {}; CPU us per delivery: hookwire {}, generator {}, receivers {}",
        s["database"].as_str().unwrap_or("sqlite"),
        s["rate"],
        f(&s["minutes"]).unwrap_or(0.0),
        f(&s["achieved_per_s"]).unwrap_or(0.0),
        s["retention"].as_str().unwrap_or(""),
        count(&s["pruned_total"]),
        us(&s["cpu_us_per_delivery"]["hookwire"]),
        us(&s["cpu_us_per_delivery"]["generator"]),
        us(&s["cpu_us_per_delivery"]["receiver"])
    );
    let _ = writeln!(
        t,
        "{:>7} {:>9} {:>8} {:>6} {:>8} {:>8} {:>9} {:>8}",
        "minutes", "db MB", "RSS MB", "cpu %", "p50 ms", "p99 ms", "queue", "pruned"
    );
    for x in s["samples"].as_array().into_iter().flatten() {
        let _ = writeln!(
            t,
            "{:>7.2} {:>9.1} {:>8.1} {:>6.0} {:>8.2} {:>8.2} {:>9} {:>8}{}",
            f(&x["minutes"]).unwrap_or(0.0),
            f(&x["db_bytes"]).unwrap_or(0.0) / 1_048_576.0,
            f(&x["rss_bytes"]).unwrap_or(0.0) / 1_048_576.0,
            100.0 * f(&x["hookwire_cpu_cores"]).unwrap_or(0.0),
            f(&x["p50_ms"]).unwrap_or(f64::NAN),
            f(&x["p99_ms"]).unwrap_or(f64::NAN),
            count(&x["queue_depth"]),
            count(&x["pruned_total"]),
            if x["after_drain"].is_null() {
                ""
            } else {
                "  (drained)"
            }
        );
    }
    let g = &s["targets"];
    let pc = |v: &Value| f(v).map_or("-".into(), |v| format!("{:+.1} %", 100.0 * v));
    let state = |v: &Value| v.as_str().unwrap_or("not evaluated").to_string();
    let _ = writeln!(t, "soak targets (second half against its first sample):");
    let _ = writeln!(
        t,
        "  database grows < 5 %: {} ({})",
        pc(&g["db_growth"]),
        state(&g["db"])
    );
    let _ = writeln!(
        t,
        "  RSS grows < 5 %: {} ({})",
        pc(&g["rss_growth"]),
        state(&g["rss"])
    );
    let _ = writeln!(
        t,
        "  p99 <= 2 x before pruning: {:.2} ms vs {:.2} ms ({})",
        f(&g["p99_second_half_ms"]).unwrap_or(f64::NAN),
        f(&g["p99_before_pruning_ms"]).unwrap_or(f64::NAN),
        state(&g["p99"])
    );
    let _ = writeln!(
        t,
        "  achieved rate = offered: {:.3} of it ({})",
        f(&g["achieved_share"]).unwrap_or(0.0),
        state(&g["rate"])
    );
    let _ = writeln!(t, "  nothing lost: {}", state(&g["nothing_lost"]));
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Horizontal bars, one row per label, each with up to three values.
fn bars(title: &str, unit: &str, rows: &[(String, Vec<f64>)], legend: &[&str]) -> String {
    const COLORS: [&str; 3] = ["#4e79a7", "#f28e2b", "#e15759"];
    // Room for the longest label at about 6.5 px a character (12 px sans-serif).
    let longest = rows.iter().map(|r| r.0.chars().count()).max().unwrap_or(0);
    let (left, width, row_h) = (
        (longest as f64 * 6.5 + 12.0).max(210.0),
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
        .map(|w| {
            (
                format!("{} ({:.0}/s)", w.label, w.per_s),
                vec![w.per_s / w.base],
            )
        })
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
    let mut wrote = "results.json, throughput.svg, latency.svg";
    if let Some(samples) = r["soak"]["samples"].as_array() {
        std::fs::write(dir.join("soak.svg"), soak_svg(samples))?;
        wrote = "results.json, throughput.svg, latency.svg, soak.svg";
    }
    eprintln!("wrote {}/{{{wrote}}}", dir.display());
    Ok(())
}

/// The soak's time series: database MB, RSS MB and p99 ms against minutes,
/// one panel each (their units differ), sharing the time axis.
fn soak_svg(samples: &[Value]) -> String {
    let series = |key: &str, scale: f64| -> Vec<(f64, f64)> {
        samples
            .iter()
            .filter_map(|s| Some((f(&s["minutes"])?, f(&s[key])? / scale)))
            .filter(|(_, y)| y.is_finite())
            .collect()
    };
    lines(
        "Soak: database, RSS and p99 latency over time",
        "minutes",
        &[
            ("database (MB)", series("db_bytes", 1_048_576.0)),
            ("hookwire RSS (MB)", series("rss_bytes", 1_048_576.0)),
            ("p99 latency (ms)", series("p99_ms", 1.0)),
        ],
    )
}

/// Line charts stacked vertically, one per (name, points), sharing the x axis.
fn lines(title: &str, x_label: &str, panels: &[(&str, Vec<(f64, f64)>)]) -> String {
    const COLORS: [&str; 3] = ["#4e79a7", "#f28e2b", "#e15759"];
    let (left, width, panel_h, gap) = (70.0, 560.0, 120.0, 45.0);
    let height = 40.0 + panels.len() as f64 * (panel_h + gap) + 10.0;
    let x_max = panels
        .iter()
        .flat_map(|p| p.1.iter().map(|(x, _)| *x))
        .fold(0.0_f64, f64::max)
        .max(1e-9);
    let mut s = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"10\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>\n",
        esc(title),
        w = left + width + 30.0
    );
    for (i, (name, points)) in panels.iter().enumerate() {
        let top = 40.0 + i as f64 * (panel_h + gap);
        let bottom = top + panel_h;
        // From 0, so a flat line looks flat and growth is seen at its size.
        let y_max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1e-9) * 1.1;
        let _ = writeln!(
            s,
            "<text x=\"{left}\" y=\"{}\" font-weight=\"bold\">{}</text>\n\
             <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{bottom}\" stroke=\"#888\"/>\n\
             <line x1=\"{left}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#888\"/>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\n\
             <text x=\"{}\" y=\"{bottom}\" text-anchor=\"end\">0</text>\n\
             <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{x_max:.1} {}</text>",
            top - 6.0,
            esc(name),
            left + width,
            left - 6.0,
            top + 10.0,
            esc(&format!("{y_max:.1}")),
            left - 6.0,
            left + width,
            bottom + 16.0,
            esc(x_label)
        );
        let path: Vec<String> = points
            .iter()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    left + x / x_max * width,
                    bottom - y / y_max * panel_h
                )
            })
            .collect();
        let _ = writeln!(
            s,
            "<polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\" points=\"{}\"/>",
            COLORS[i % 3],
            path.join(" ")
        );
    }
    s.push_str("</svg>\n");
    s
}

fn numbers(v: &Value) -> Vec<f64> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_f64)
        .collect()
}
