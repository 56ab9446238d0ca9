//! `hookwire-bench`: runs the benchmark (see the library and BENCHMARKS.md).

#![forbid(unsafe_code)]

use clap::Parser;
use hookwire_bench::Options;

#[tokio::main]
async fn main() {
    let opts = Options::parse();
    let bin = opts.hookwire.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .expect("the current executable")
            .with_file_name("hookwire")
    });
    if !bin.exists() && opts.from_results.is_none() {
        eprintln!(
            "no hookwire binary at {} (build it: cargo build --release -p hookwire, or pass --hookwire)",
            bin.display()
        );
        std::process::exit(2);
    }
    if let Err(e) = hookwire_bench::run(opts, &bin).await {
        eprintln!("benchmark failed: {e}");
        std::process::exit(1);
    }
}
