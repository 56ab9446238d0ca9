//! The `hookwire` binary: parses the command line and hands over to the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = hookwire::cli::Cli::parse();
    match hookwire::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookwire: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
