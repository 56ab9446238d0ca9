//! Ordered delivery (scenario 10): what it costs to deliver each chat's
//! events one at a time, in the order hookwire took them. One webhook on
//! SQLite; `--ordered-events` events spread over chats (event i is in chat
//! i % chats, its visitor keeps i), ingested one per request and in batches
//! as in steady, each run on a fresh hookwire. The runs: unordered over the
//! first `--ordered-chats` count (the reference), ordered over each count,
//! and, with the first attempt of 1 % of the events failing, ordered and
//! unordered over the first count. The generator never has two events of
//! one chat in flight, so hookwire takes each chat's events in sequence
//! order, and the receiver counts the events that first arrived after a
//! later one of their chat (`out_of_order`, which an ordered run must keep
//! at 0). Target: ordered delivery costs at most 15 % of the unordered
//! throughput when attempts succeed. Each round also runs the stuck-chat
//! pair (`stuck`): whether one chat whose endpoint keeps failing slows
//! the other chats down.

mod stuck;

use super::{cpu_line, latencies_except, pct, secs, wait_for, Ctx};
use crate::cpu;
use crate::events::Events;
use crate::load::Ingest;
use crate::process::BoxError;
use crate::receiver::{fails_first, Answer};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;

/// The most ordered delivery may cost, as a share of the unordered
/// throughput, when every attempt succeeds.
pub const TARGET_COST: f64 = 0.15;
/// In the failure runs, the first attempt of one event in this many of
/// each chat fails (`receiver::fails_first`).
const FAIL_EVERY: u64 = 100;
/// The failure runs' retry delays. With hookwire's default first retry
/// (5 s) each failure would hold its chat back for 5 s, and a run would
/// last as long as its slowest chat's failures add up to; a short first
/// retry keeps the run about throughput.
const RETRY_SCHEDULE: [&str; 5] = ["200ms", "1s", "5s", "15s", "1m"];

/// One kind of run.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Variant {
    ordered: bool,
    chats: usize,
    /// Whether the receiver fails the first attempt of 1 % of the events.
    failures: bool,
    /// Whether the receiver fails every attempt of every event of one chat
    /// (`stuck::STUCK_CHAT`), which the run then leaves out: it ends when
    /// every other chat's events arrived.
    stuck: bool,
}

impl Variant {
    fn name(self) -> String {
        format!(
            "{}, {} chats{}{}",
            if self.ordered { "ordered" } else { "unordered" },
            self.chats,
            if self.failures {
                format!(", {}% fail", 100 / FAIL_EVERY)
            } else {
                String::new()
            },
            if self.stuck { ", one stuck" } else { "" }
        )
    }

    /// The unordered variant an ordered one is compared with: the first
    /// chat count (the same events, for that count), the same failures.
    fn reference(self, first_chats: usize) -> Option<Variant> {
        self.ordered.then_some(Variant {
            ordered: false,
            chats: first_chats,
            failures: self.failures,
            stuck: false,
        })
    }
}

/// Every variant, `--steady-rounds` times in both modes. Within a round
/// the variants run back to back, forwards in one block and backwards in
/// the next, so that drift in the machine's speed falls on both sides of
/// each comparison; each ordered run is compared with its reference of the
/// same round and mode, and each variant reports the run with the median
/// of those ratios (the unordered ones, the median delivered/s).
pub(super) async fn run(ctx: &Ctx<'_>) -> Result<Value, BoxError> {
    let counts = &ctx.opts.ordered_chats;
    let first = *counts
        .first()
        .ok_or("--ordered-chats names no chat count")?;
    if counts.contains(&0) {
        return Err("--ordered-chats: a chat count must be at least 1".into());
    }
    let mut variants = vec![Variant {
        ordered: false,
        chats: first,
        failures: false,
        stuck: false,
    }];
    variants.extend(counts.iter().map(|&chats| Variant {
        ordered: true,
        chats,
        failures: false,
        stuck: false,
    }));
    for ordered in [true, false] {
        variants.push(Variant {
            ordered,
            chats: first,
            failures: true,
            stuck: false,
        });
    }
    eprintln!(
        "ordered delivery: {} events over {counts:?} chats; the failure runs retry after {}",
        ctx.opts.ordered_events, RETRY_SCHEDULE[0]
    );
    if first < 2 {
        return Err(
            "--ordered-chats: the stuck-chat pair needs a first count of at least 2".into(),
        );
    }
    let modes = [1, ctx.opts.batch];
    // runs[mode][variant]: the variant's runs in that mode, by round.
    let mut runs = vec![vec![Vec::new(); variants.len()]; modes.len()];
    let mut pairs = stuck::Pairs::default();
    let mut block = 0;
    for round in 0..ctx.opts.steady_rounds.max(1) {
        for (m, &per_request) in modes.iter().enumerate() {
            let mut order: Vec<usize> = (0..variants.len()).collect();
            if block % 2 == 1 {
                order.reverse();
            }
            block += 1;
            for v in order {
                let mut run = one(ctx, variants[v], per_request).await?;
                run["round"] = json!(round);
                runs[m][v].push(run);
            }
        }
        pairs.run(ctx, first, round).await?;
    }
    let mut summaries = Vec::new();
    for in_mode in &runs {
        for (v, variant) in variants.iter().enumerate() {
            let reference = variant
                .reference(first)
                .and_then(|r| variants.iter().position(|x| *x == r))
                .map(|r| (variants[r].name(), in_mode[r].as_slice()));
            summaries.push(summary(&in_mode[v], reference));
        }
    }
    Ok(json!({
        "backend": "sqlite", "events": ctx.opts.ordered_events, "chats": counts,
        "fail_every": FAIL_EVERY, "failure_share": 1.0 / FAIL_EVERY as f64,
        "failure_retry_schedule": RETRY_SCHEDULE, "rounds": ctx.opts.steady_rounds.max(1),
        "target_cost": TARGET_COST, "runs": summaries,
        "stuck_chat": pairs.summary(ctx, first),
    }))
}

fn rate(run: &Value) -> f64 {
    run["delivered_per_s"].as_f64().unwrap_or(0.0)
}

/// One variant in one mode over its rounds: the run with the median ratio
/// to its reference (or, for a reference, the median delivered/s), with
/// every round's figures, CPU per delivery the median of the rounds'
/// process by process, and duplicates and out-of-order arrivals summed.
fn summary(runs: &[Value], reference: Option<(String, &[Value])>) -> Value {
    let ratios: Option<Vec<f64>> = reference.as_ref().map(|(_, refs)| {
        runs.iter()
            .zip(refs.iter())
            .map(|(r, u)| rate(r) / rate(u))
            .collect()
    });
    let rates: Vec<f64> = runs.iter().map(rate).collect();
    let keys = ratios.as_ref().unwrap_or(&rates);
    let mut by_key: Vec<usize> = (0..keys.len()).collect();
    by_key.sort_by(|&a, &b| keys[a].total_cmp(&keys[b]));
    let Some(&pick) = by_key.get(by_key.len() / 2) else {
        return Value::Null;
    };
    let sum = |name: &str| -> u64 { runs.iter().filter_map(|r| r[name].as_u64()).sum() };
    let cpus: Vec<Value> = runs
        .iter()
        .map(|r| r["cpu_us_per_delivery"].clone())
        .collect();
    let mut s = runs[pick].clone();
    s["rounds_delivered_per_s"] = json!(rates);
    s["cpu_us_per_delivery"] = cpu::median(&cpus);
    s["rounds_cpu_us_per_delivery"] = json!(cpus);
    s["duplicates"] = json!(sum("duplicates"));
    let out_of_order = sum("out_of_order");
    s["out_of_order"] = json!(out_of_order);
    if let (Some(ratios), Some((name, refs))) = (ratios, reference) {
        let ratio = ratios[pick];
        s["reference"] = json!(name);
        s["ordered_vs_unordered"] = json!(ratio);
        s["rounds_ordered_vs_unordered"] = json!(ratios);
        s["cost"] = json!(1.0 - ratio);
        s["order_kept"] = json!(out_of_order == 0);
        let ref_cpus: Vec<Value> = refs
            .iter()
            .map(|r| r["cpu_us_per_delivery"].clone())
            .collect();
        let hookwire = |cpu: &Value| cpu["hookwire"].as_f64();
        s["hookwire_cpu_vs_unordered"] = json!(hookwire(&s["cpu_us_per_delivery"])
            .zip(hookwire(&cpu::median(&ref_cpus)))
            .map(|(o, u)| o / u));
        if s["first_attempts_fail"] == false {
            s["target_met"] = json!(1.0 - ratio <= TARGET_COST);
        }
    }
    s
}

/// One run: a fresh hookwire with one webhook (ordered or not) at a
/// receiver that checks each chat's order, `per_request` events per request.
async fn one(ctx: &Ctx<'_>, v: Variant, per_request: usize) -> Result<Value, BoxError> {
    let n = ctx.opts.ordered_events;
    let mode = if per_request == 1 { "single" } else { "batch" };
    let label = format!("ordered/{mode}/{}", v.name());
    let answer = if v.stuck {
        Answer::StuckChat(stuck::STUCK_CHAT)
    } else if v.failures {
        Answer::FailFirst(FAIL_EVERY)
    } else {
        Answer::Ok
    };
    // The events the run waits for and divides by: all of them, or, with
    // a stuck chat, the other chats' (the stuck one's never arrive).
    let in_stuck_chat = |seq: usize| v.stuck && seq % v.chats == stuck::STUCK_CHAT;
    let expected = (0..n).filter(|&seq| !in_stuck_chat(seq)).count();
    let rx = ctx.chat_receiver(n, v.chats, answer)?;
    let config = if v.failures {
        format!("retry_schedule = {RETRY_SCHEDULE:?}\n")
    } else {
        String::new()
    };
    let mut hw = ctx.hookwire(None, &config)?;
    let (_, echoed) = hw.setup_webhook(&ctx.http, &rx.url(0), v.ordered).await?;
    if v.ordered && echoed == Some(false) {
        return Err(format!(
            "[{label}] hookwire took \"ordered\": true but created the webhook unordered"
        )
        .into());
    }
    if v.ordered && echoed.is_none() {
        eprintln!(
            "  [{label}] hookwire did not answer \"ordered\" back: ordered delivery unconfirmed"
        );
    }
    let ingest = Ingest::new(n);
    let concurrency = if per_request == 1 {
        ctx.opts.concurrency
    } else {
        ctx.opts.batch_concurrency
    };
    let meter = ctx.meter(Some(&hw), None);
    let cpu_before = meter.read();
    let run = ctx.closed_loop(
        &hw,
        Events::over_chats(v.chats),
        n,
        per_request,
        concurrency,
        &ingest,
    )?;
    let stats = rx.stats.clone();
    let rss_max = wait_for(
        &label,
        expected as u64,
        || stats.unique.load(Relaxed),
        &hw,
        Some(&ingest),
    )
    .await?;
    run.await??;
    let cpu = cpu_line(&label, &cpu_before.until(&meter.read()), expected as u64);
    let start = ingest.started.load(Relaxed);
    let ingest_per_s = n as f64 / secs(ingest.ended.load(Relaxed) - start);
    let delivered_per_s = expected as f64 / secs(rx.stats.last.load(Relaxed) - start);
    let lat = latencies_except(&ingest.accepted, &rx, in_stuck_chat);
    let from_send = latencies_except(&ingest.sent_at, &rx, in_stuck_chat);
    let out_of_order = rx.stats.out_of_order();
    // How long the events whose first attempt failed took (accepted ->
    // arrived): what a failure really held its chat back, retry delay and
    // the dispatcher's wake-up included.
    let mut retried: Vec<f64> = (0..n)
        .filter(|&seq| v.failures && fails_first(seq, v.chats, FAIL_EVERY))
        .map(|seq| {
            let (sent, got) = (&ingest.accepted[seq], &rx.stats.arrivals[seq]);
            got.load(Relaxed).saturating_sub(sent.load(Relaxed)) as f64 / 1e6
        })
        .collect();
    retried.sort_by(f64::total_cmp);
    let failed = if v.failures {
        format!(
            ", {} first attempts failed (those events arrived {:.0} ms after their 202 at the median)",
            rx.stats.failed.load(Relaxed),
            pct(&retried, 50.0)
        )
    } else {
        String::new()
    };
    eprintln!(
        "  [{label}] ingest {ingest_per_s:.0}/s, delivered {delivered_per_s:.0}/s, p50/p99 {:.1}/{:.1} ms, out of order {out_of_order}{failed}",
        pct(&lat, 50.0),
        pct(&lat, 99.0),
    );
    let stuck = if v.stuck {
        stuck::check(ctx, &label, &rx, n, v.chats).await?
    } else {
        Value::Null
    };
    if v.ordered && out_of_order > 0 {
        let what = format!("{out_of_order} events arrived after a later event of their chat");
        if ctx.opts.smoke {
            return Err(format!("[{label}] order not kept: {what}").into());
        }
        eprintln!("  [{label}] ORDER NOT KEPT: {what}");
    }
    Ok(json!({
        "variant": v.name(), "ordered": v.ordered, "chats": v.chats,
        "first_attempts_fail": v.failures, "ordered_echoed": echoed,
        "backend": "sqlite", "mode": mode, "events": n, "per_request": per_request,
        "concurrency": concurrency, "ingest_per_s": ingest_per_s,
        "delivered_per_s": delivered_per_s,
        "p50_ms": pct(&lat, 50.0), "p99_ms": pct(&lat, 99.0),
        "p50_from_send_ms": pct(&from_send, 50.0), "p99_from_send_ms": pct(&from_send, 99.0),
        "delivered": rx.stats.unique.load(Relaxed), "expected": expected,
        "duplicates": rx.stats.total.load(Relaxed).saturating_sub(expected as u64),
        "out_of_order": out_of_order,
        "first_attempts_failed": rx.stats.failed.load(Relaxed),
        "first_attempts_to_fail": retried.len(),
        "retried_p50_ms": pct(&retried, 50.0), "retried_max_ms": retried.last(),
        "generator_chat_waits": ingest.chat_waits.load(Relaxed),
        "rss_max_bytes": rss_max, "db_bytes": hw.sqlite_bytes(),
        "cpu_us_per_delivery": cpu, "stuck_chat": stuck,
    }))
}
