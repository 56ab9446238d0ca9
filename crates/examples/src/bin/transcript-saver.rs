//! Runs the transcript-saver example: point a `chat_ended` webhook (with the
//! `chat` and `visitor` data types) at the address it prints.

#![forbid(unsafe_code)]

use clap::Parser;
use hookwire_examples::transcript::{self, Config};
use std::path::PathBuf;

#[derive(Parser)]
#[command(about = "On chat_ended, save the transcript to DIR/{chat id}.txt")]
struct Args {
    /// Address to receive webhooks on.
    #[arg(long, env = "EXAMPLE_LISTEN", default_value = "127.0.0.1:8083")]
    listen: String,
    /// Directory for the transcripts; created if missing.
    #[arg(long, default_value = "transcripts")]
    dir: PathBuf,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hookwire_examples::launch::main("transcript-saver", serve(Args::parse())).await
}

async fn serve(args: Args) -> hookwire_examples::launch::MainResult {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "transcript-saver listening on http://{}/, saving to {}",
        listener.local_addr()?,
        args.dir.display()
    );
    transcript::run(listener, Config { dir: args.dir }).await?;
    Ok(())
}
