//! The hookwire benchmark as a library, so the integration tests can run
//! its smoke version against the binary they were built with. It starts the
//! real hookwire binary (SQLite, and PostgreSQL when installed), a counting
//! receiver and a load generator (each on a tokio runtime of its own, so
//! their CPU can be read apart), all on loopback; runs the scenarios of
//! BENCHMARKS.md; prints a table and writes `results.json` and SVG plots.
//! `--smoke` is a seconds-long run that only checks every event arrives
//! (it asserts no speed).

#![forbid(unsafe_code)]

mod client;
pub mod cpu;
mod events;
mod load;
mod pg;
pub mod process;
mod receiver;
pub mod report;
mod scenario;

use clap::Parser;
use std::path::{Path, PathBuf};

pub use process::BoxError;

#[derive(Parser, Clone)]
#[command(name = "hookwire-bench", about = "Benchmark hookwire on loopback.")]
pub struct Options {
    /// The hookwire binary (default: `hookwire` next to this binary).
    #[arg(long)]
    pub hookwire: Option<PathBuf>,
    /// Scenarios to run, comma-separated: steady,fixed,fanout,isolation,backlog,multitenant,ordered,postgres,soak,prune (the baseline always runs).
    #[arg(
        long,
        default_value = "steady,fixed,fanout,isolation,backlog,multitenant,ordered,postgres,soak,prune"
    )]
    scenario: String,
    /// Events per steady run (one per request, and in batches).
    #[arg(long, default_value_t = 200_000)]
    events: usize,
    /// Rounds of the steady runs (each round: one per request, then
    /// batched); the round with the median delivered/s is reported.
    #[arg(long, default_value_t = 3)]
    steady_rounds: usize,
    /// Events per batch in the batched runs.
    #[arg(long, default_value_t = 100)]
    batch: usize,
    /// Requests in flight for one-per-request ingest and the baseline.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Batches in flight for batched ingest.
    #[arg(long, default_value_t = 8)]
    batch_concurrency: usize,
    /// Fixed ingest rates (events/s) for the latency scenario.
    #[arg(long, default_value = "1000,10000", value_delimiter = ',')]
    rates: Vec<u64>,
    /// Seconds each fixed rate runs.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Events in the fan-out scenario (each goes to 100 webhooks).
    #[arg(long, default_value_t = 2_000)]
    fanout_events: usize,
    /// Events in the isolation scenario (each goes to 20 healthy webhooks).
    #[arg(long, default_value_t = 10_000)]
    isolation_events: usize,
    /// Deliveries piled up in the backlog scenario.
    #[arg(long, default_value_t = 1_000_000)]
    backlog: usize,
    /// Licenses in the multi-tenant scenario.
    #[arg(long, default_value_t = 2_000)]
    tenants: usize,
    /// Webhooks per license in the multi-tenant scenario.
    #[arg(long, default_value_t = 5)]
    tenant_webhooks: usize,
    /// Events per multi-tenant run (each goes to every webhook of its license).
    #[arg(long, default_value_t = 40_000)]
    multitenant_events: usize,
    /// Events per run of the ordered-delivery scenario (one per request, and in batches).
    #[arg(long, default_value_t = 200_000)]
    ordered_events: usize,
    /// Chats the ordered-delivery scenario spreads its events over, one
    /// ordered run each; the first count is also that of the unordered
    /// reference and of the runs with failing first attempts.
    #[arg(long, default_value = "1000,100000", value_delimiter = ',')]
    ordered_chats: Vec<usize>,
    /// Offered rate of the soak, events per second (one per request, open loop).
    #[arg(long, default_value_t = 2_000)]
    soak_rate: u64,
    /// How long the soak offers load, in minutes.
    #[arg(long, default_value_t = 20.0)]
    soak_minutes: f64,
    /// The soak's database: sqlite, or postgres (a throwaway cluster, as
    /// the postgres scenario starts).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    soak_database: String,
    /// Seconds between two soak samples.
    #[arg(long, default_value_t = 30.0)]
    soak_sample_seconds: f64,
    /// Finished deliveries piled up before the large prune.
    #[arg(long, default_value_t = 1_000_000)]
    prune_fill: usize,
    /// Offered rate while the large prune is measured, events per second.
    #[arg(long, default_value_t = 1_000)]
    prune_rate: u64,
    /// Seconds each phase of the large prune (without, then with it) offers load.
    #[arg(long, default_value_t = 30)]
    prune_seconds: u64,
    /// Worker threads of the load generator's runtime.
    #[arg(long, default_value_t = 1)]
    generator_threads: usize,
    /// Worker threads of the receivers' runtime.
    #[arg(long, default_value_t = 1)]
    receiver_threads: usize,
    /// Where results.json and the SVG plots go.
    #[arg(long, default_value = "bench")]
    pub out: PathBuf,
    /// Run nothing: print the table and draw the plots again from this results.json.
    #[arg(long)]
    pub from_results: Option<PathBuf>,
    /// A seconds-long run with tiny sizes, SQLite only: checks that every event arrives.
    #[arg(long)]
    pub smoke: bool,
}

impl Options {
    fn smoke(mut self) -> Options {
        self.events = 300;
        self.steady_rounds = 1;
        self.rates = vec![200];
        self.seconds = 1;
        self.fanout_events = 5;
        self.isolation_events = 20;
        // Enough that redelivering the backlog (one statement) outgrows the
        // SQLite sub-journal kept in memory and spills to a file, a path
        // only the real binary's SQLite settings take.
        self.backlog = 3_000;
        self.tenants = 40;
        self.multitenant_events = 400;
        // Ten events per chat in the first count, so order is checked.
        self.ordered_events = 1_000;
        self.ordered_chats = vec![100, 500];
        self.soak_rate = 200;
        self.soak_minutes = 5.0 / 60.0;
        self.soak_sample_seconds = 1.0;
        self.prune_fill = 2_000;
        self.prune_rate = 200;
        self.prune_seconds = 2;
        self.scenario = self.scenario.replace("postgres", "");
        self
    }

    pub fn runs(&self, name: &str) -> bool {
        self.scenario.split(',').any(|s| s.trim() == name)
    }
}

/// Runs the benchmark against the hookwire binary `bin`: the scenarios,
/// then the table on stdout and (unless smoke) the files under `opts.out`.
/// Fails when any delivery did not arrive.
pub async fn run(opts: Options, bin: &Path) -> Result<serde_json::Value, BoxError> {
    if let Some(path) = &opts.from_results {
        let results: serde_json::Value = serde_json::from_slice(&std::fs::read(path)?)?;
        report::write(&opts.out, &results, false)?;
        return Ok(results);
    }
    let opts = if opts.smoke { opts.smoke() } else { opts };
    let results = scenario::run_all(&opts, bin).await?;
    report::write(&opts.out, &results, opts.smoke)?;
    Ok(results)
}
