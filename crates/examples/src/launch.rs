//! What every example binary does around its receiver: logging to stderr,
//! and a clear one-line error with a failing exit code.

use std::future::Future;
use std::process::ExitCode;

pub type MainResult = Result<(), Box<dyn std::error::Error>>;

/// Sets up logging, runs `serve`, and turns its error into `name: error`.
pub async fn main(name: &str, serve: impl Future<Output = MainResult>) -> ExitCode {
    // Colours only for a person watching; logs piped to a file stay plain.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match serve.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::FAILURE
        }
    }
}
