//! Runs the statusboard example: point a `visitor_queued` webhook (with the
//! `visitor` data type) at the address it prints, and keep this terminal in view.

#![forbid(unsafe_code)]

use clap::Parser;
use hookwire_examples::statusboard::{self, Config};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "On visitor_queued, ring the bell and print who is waiting")]
struct Args {
    /// Address to receive webhooks on.
    #[arg(long, env = "EXAMPLE_LISTEN", default_value = "127.0.0.1:8082")]
    listen: String,
    /// A sound file to play per alert with aplay or paplay, if installed.
    #[arg(long)]
    sound: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hookwire_examples::launch::main("statusboard", serve(Args::parse())).await
}

async fn serve(args: Args) -> hookwire_examples::launch::MainResult {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "statusboard listening on http://{}/",
        listener.local_addr()?
    );
    let config = Config {
        sound: args.sound,
        ..Config::stdout()
    };
    statusboard::run(listener, config).await?;
    Ok(())
}
