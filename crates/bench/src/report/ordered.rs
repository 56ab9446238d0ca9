//! The ordered-delivery scenario in the results: its rows of the
//! throughput table and chart, and its own block (each run next to its
//! unordered reference, order kept or not, and the target; then the
//! stuck-chat pair's ratio and its target).

use super::{base_of, count, f, row, us, Row};
use serde_json::Value;
use std::fmt::Write as _;

/// The scenario's rows of the throughput table and chart.
pub(super) fn throughputs(r: &Value) -> Vec<Row> {
    runs(r)
        .map(|o| {
            row(
                format!("{}, {}", o["variant"].as_str().unwrap_or(""), mode(o)),
                f(&o["delivered_per_s"]).unwrap_or(0.0),
                base_of(r, "ordered"),
                &o["cpu_us_per_delivery"],
            )
        })
        .collect()
}

fn runs(r: &Value) -> impl Iterator<Item = &Value> {
    r["ordered"]["runs"].as_array().into_iter().flatten()
}

fn mode(o: &Value) -> &str {
    o["mode"].as_str().unwrap_or("")
}

/// The scenario's block of the table, when it ran.
pub(super) fn table(t: &mut String, r: &Value) {
    let o = &r["ordered"];
    if o.is_null() {
        return;
    }
    let _ = writeln!(
        t,
        "\nordered delivery on {}: {} events per run, median of {} rounds; x unordered: against the unordered run of the same round and mode, with the same failures",
        o["backend"].as_str().unwrap_or("sqlite"),
        count(&o["events"]),
        count(&o["rounds"]),
    );
    let _ = writeln!(
        t,
        "{:<30} {:<6} {:>10} {:>7} {:>8} {:>9} {:>8} {:>7} {:>7} {:>5} {:>6} {:>6}",
        "run",
        "mode",
        "per second",
        "x unord",
        "hookwire",
        "generator",
        "receiver",
        "p50 ms",
        "p99 ms",
        "dup",
        "order",
        "waits"
    );
    for run in runs(r) {
        let c = &run["cpu_us_per_delivery"];
        let order = if run["ordered"] == true {
            count(&run["out_of_order"])
        } else {
            "-".into()
        };
        let _ = writeln!(
            t,
            "{:<30} {:<6} {:>10.0} {:>7} {:>8} {:>9} {:>8} {:>7.2} {:>7.2} {:>5} {:>6} {:>6}",
            run["variant"].as_str().unwrap_or(""),
            mode(run),
            f(&run["delivered_per_s"]).unwrap_or(0.0),
            f(&run["ordered_vs_unordered"]).map_or("-".into(), |v| format!("{v:.3}")),
            us(&c["hookwire"]),
            us(&c["generator"]),
            us(&c["receiver"]),
            f(&run["p50_ms"]).unwrap_or(f64::NAN),
            f(&run["p99_ms"]).unwrap_or(f64::NAN),
            count(&run["duplicates"]),
            order,
            count(&run["generator_chat_waits"]),
        );
    }
    let _ = writeln!(
        t,
        "(per second: the run reported, the one with the median x unordered (for the unordered runs, the median per second); CPU: microseconds per delivered event, medians of the rounds; order: events that arrived after a later event of their chat, summed over the rounds, which must be 0; waits: requests the generator held back until an earlier event of their chat was accepted; the failure runs fail the first attempt of 1 in {} events of each chat and retry after {})",
        count(&o["fail_every"]),
        o["failure_retry_schedule"][0].as_str().unwrap_or("-"),
    );
    for run in runs(r).filter(|run| run["first_attempts_fail"] == true) {
        let _ = writeln!(
            t,
            "{}, {}: {} first attempts failed; those events arrived {} ms after acceptance at the median, {} ms at most",
            run["variant"].as_str().unwrap_or(""),
            mode(run),
            count(&run["first_attempts_failed"]),
            count(&run["retried_p50_ms"]),
            count(&run["retried_max_ms"]),
        );
    }
    let target = f(&o["target_cost"]).unwrap_or(f64::NAN);
    for run in runs(r).filter(|run| run["target_met"].is_boolean()) {
        let _ = writeln!(
            t,
            "ordered delivery costs <= {:.0} % of unordered throughput, {}, {}: {} ({}); order {}",
            100.0 * target,
            run["variant"].as_str().unwrap_or(""),
            mode(run),
            f(&run["cost"]).map_or("-".into(), |v| format!("{:.1} %", 100.0 * v)),
            if run["target_met"] == true {
                "met"
            } else {
                "missed"
            },
            if run["order_kept"] == true {
                "kept"
            } else {
                "NOT KEPT"
            },
        );
    }
    stuck_chat(t, &o["stuck_chat"]);
}

/// The stuck-chat pair's line: the other chats' delivered/s with one chat
/// stuck against all healthy, hookwire's CPU in both, what the stuck chat
/// saw, and the target.
fn stuck_chat(t: &mut String, s: &Value) {
    if s.is_null() {
        return;
    }
    let pairs: Vec<String> = s["pair_ratios"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(f)
        .map(|v| format!("{v:.2}"))
        .collect();
    let _ = writeln!(
        t,
        "one stuck chat ({}, {}, median of {} pairs): the other chats {}/s with chat {} failing every attempt, {}/s with every chat healthy: ratio {} (pairs {}) >= {:.2}: {}; hookwire CPU us per delivered event {} all healthy, {} with one stuck; the stuck chat's first event attempted {} times, its later events {} times; order {}",
        s["variant"].as_str().unwrap_or(""),
        mode(s),
        count(&s["pairs"]),
        count(&s["with_stuck_per_s"]),
        count(&s["stuck_chat"]),
        count(&s["all_healthy_per_s"]),
        f(&s["ratio"]).map_or("-".into(), |v| format!("{v:.2}")),
        pairs.join(", "),
        f(&s["target_ratio"]).unwrap_or(f64::NAN),
        if s["target_met"] == true {
            "met"
        } else {
            "missed"
        },
        us(&s["cpu_us_per_delivery"]["hookwire"]),
        us(&s["with_stuck_cpu_us_per_delivery"]["hookwire"]),
        count(&s["stuck_first_attempts"]),
        count(&s["stuck_later_attempts"]),
        if s["order_kept"] == true {
            "kept"
        } else {
            "NOT KEPT"
        },
    );
}
