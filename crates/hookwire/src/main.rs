//! The `hookwire` binary: parses the command line and hands over to the library.

#![deny(unsafe_code)]

use clap::Parser;

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
