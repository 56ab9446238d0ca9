//! The ordered scenario's stuck-chat pair: whether one chat whose endpoint
//! keeps failing slows the other chats down, measured as isolation
//! (scenario 4) measures a hung webhook. Each round runs, back to back,
//! "ordered, N chats" (every attempt succeeds) and "ordered, N chats, one
//! stuck" (the receiver answers 500 to every attempt of every event of
//! chat `STUCK_CHAT`, so hookwire retries that chat's first event on its
//! default schedule and parks its later events), on fresh hookwires, with
//! batched ingest. The stuck run ends when every event of every other
//! chat has arrived, and its delivered/s and CPU per delivery count those
//! alone. The ratio is the median of the rounds' pairs (other chats'
//! delivered/s with one stuck / all healthy). Target, isolation's: >= 0.90.

use super::{one, rate, Variant};
use crate::cpu;
use crate::process::BoxError;
use crate::receiver::Receiver;
use crate::scenario::{median, Ctx};
use serde_json::{json, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// The chat whose every attempt fails in the stuck run. Chat 0's first
/// event is event 0, the first ingested: it is stuck from the run's start.
pub(super) const STUCK_CHAT: usize = 0;
/// The least the other chats' delivered/s with one chat stuck may be, as a
/// share of it with every chat healthy (isolation's target).
const TARGET_RATIO: f64 = 0.90;

/// The pair's runs so far: [all healthy, one stuck], by round.
#[derive(Default)]
pub(super) struct Pairs {
    runs: [Vec<Value>; 2],
}

impl Pairs {
    /// One pair over `chats` chats, batched. Which run goes first alternates
    /// with the round, as in isolation, so the machine's drift falls on
    /// both kinds.
    pub(super) async fn run(
        &mut self,
        ctx: &Ctx<'_>,
        chats: usize,
        round: usize,
    ) -> Result<(), BoxError> {
        let healthy_first = round.is_multiple_of(2);
        for stuck in [!healthy_first, healthy_first] {
            let v = Variant {
                ordered: true,
                chats,
                failures: false,
                stuck,
            };
            let mut run = one(ctx, v, ctx.opts.batch).await?;
            run["round"] = json!(round);
            run["pair"] = json!(true);
            self.runs[stuck as usize].push(run);
        }
        Ok(())
    }

    /// The pair's figures over the rounds: the median of the pairs' ratios,
    /// each kind's median delivered/s and CPU per delivery (process by
    /// process), and what the stuck chat saw, summed over the rounds.
    pub(super) fn summary(&self, ctx: &Ctx<'_>, chats: usize) -> Value {
        let rates: [Vec<f64>; 2] = [0, 1].map(|k| self.runs[k].iter().map(rate).collect());
        let cpus: [Vec<Value>; 2] = [0, 1].map(|k| {
            self.runs[k]
                .iter()
                .map(|r| r["cpu_us_per_delivery"].clone())
                .collect()
        });
        let pair_ratios: Vec<f64> = rates[1]
            .iter()
            .zip(&rates[0])
            .map(|(stuck, healthy)| stuck / healthy)
            .collect();
        let ratio = median(&pair_ratios);
        let all = || self.runs.iter().flatten();
        let sum = |name: &str| -> u64 { all().filter_map(|r| r[name].as_u64()).sum() };
        let stuck_sum = |name: &str| -> u64 {
            self.runs[1]
                .iter()
                .filter_map(|r| r["stuck_chat"][name].as_u64())
                .sum()
        };
        let (out_of_order, later) = (sum("out_of_order"), stuck_sum("later_attempts"));
        let delivered = stuck_sum("delivered");
        let n = ctx.opts.ordered_events;
        json!({
            "variant": Variant { ordered: true, chats, failures: false, stuck: true }.name(),
            "backend": "sqlite", "mode": if ctx.opts.batch == 1 { "single" } else { "batch" },
            "per_request": ctx.opts.batch, "events": n, "chats": chats,
            "stuck_chat": STUCK_CHAT, "stuck_chat_events": (STUCK_CHAT..n).step_by(chats).len(),
            "retry_schedule": "default", "pairs": pair_ratios.len(),
            "all_healthy_per_s": median(&rates[0]), "with_stuck_per_s": median(&rates[1]),
            "ratio": ratio, "pair_ratios": pair_ratios,
            "all_healthy_samples_per_s": rates[0], "with_stuck_samples_per_s": rates[1],
            "cpu_us_per_delivery": cpu::median(&cpus[0]),
            "with_stuck_cpu_us_per_delivery": cpu::median(&cpus[1]),
            "rounds_cpu_us_per_delivery": cpus[0], "with_stuck_rounds_cpu_us_per_delivery": cpus[1],
            "target_ratio": TARGET_RATIO, "target_met": ratio >= TARGET_RATIO,
            "out_of_order": out_of_order, "duplicates": sum("duplicates"),
            "stuck_first_attempts": stuck_sum("first_attempts"),
            "stuck_later_attempts": later, "stuck_delivered": delivered,
            "order_kept": out_of_order == 0 && later == 0 && delivered == 0,
            "runs": all().collect::<Vec<_>>(),
        })
    }
}

/// After a stuck run: what the stuck chat saw (its first event attempted,
/// none of its later ones attempted or delivered) and whether every other
/// chat's event arrived exactly once. In the smoke run a stuck chat that
/// was never attempted, or went past its first event, fails the run.
pub(super) async fn check(
    ctx: &Ctx<'_>,
    label: &str,
    rx: &Receiver,
    n: usize,
    chats: usize,
) -> Result<Value, BoxError> {
    // The stuck event was ingested first, so its first attempt came long
    // before the other chats' last arrival; the wait only covers a machine
    // slow enough to starve it, and comes after the CPU was read.
    let deadline = Instant::now() + Duration::from_secs(10);
    while rx.stats.stuck_attempts().0 == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (first, later) = rx.stats.stuck_attempts();
    let copies = |seq: usize| rx.stats.copies[seq].load(Relaxed);
    let stuck_events = (STUCK_CHAT..n).step_by(chats).len();
    let delivered = (STUCK_CHAT..n)
        .step_by(chats)
        .filter(|&seq| copies(seq) > 0)
        .count();
    let others_not_once = (0..n)
        .filter(|&seq| seq % chats != STUCK_CHAT && copies(seq) != 1)
        .count();
    eprintln!(
        "  [{label}] chat {STUCK_CHAT} ({stuck_events} events): first event attempted {first} times, later events attempted {later} times, {delivered} delivered; other chats' events not delivered exactly once: {others_not_once}"
    );
    if first == 0 || later > 0 || delivered > 0 {
        let what = if first == 0 {
            "its first event was never attempted"
        } else {
            "hookwire went past its failing first event"
        };
        if ctx.opts.smoke {
            return Err(format!("[{label}] stuck chat {STUCK_CHAT}: {what}").into());
        }
        eprintln!("  [{label}] STUCK CHAT NOT HELD: {what}");
    }
    Ok(json!({
        "chat": STUCK_CHAT, "events": stuck_events, "first_attempts": first,
        "later_attempts": later, "delivered": delivered,
        "others_not_exactly_once": others_not_once,
    }))
}
