//! The `hookwire` binary: parses the command line and hands over to the library.

#![deny(unsafe_code)]

use clap::Parser;

/// mimalloc rather than glibc's malloc: allocation and freeing were ~13 % of
/// hookwire's CPU per delivered event under load, with threads contending
/// on glibc's arena locks (docs/performance-log.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    // SAFETY: nothing has opened a SQLite connection yet, and nothing else runs.
    #[allow(unsafe_code)]
    unsafe {
        hookwire::store::sqlite::configure_process()
    };
    let cli = hookwire::cli::Cli::parse();
    match hookwire::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookwire: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
