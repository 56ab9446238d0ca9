//! Runs the visitor-details example: point a `chat_started` webhook (with the
//! `visitor` data type) at the address it prints.

#![forbid(unsafe_code)]

use clap::Parser;
use hookwire_examples::visitor_details::{self, Config, CustomerDb};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    about = "On chat_started, send the visitor's age and position back as custom visitor details"
)]
struct Args {
    /// Address to receive webhooks on.
    #[arg(long, env = "EXAMPLE_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// CSV customer database with the columns email,age,position.
    #[arg(long)]
    customers: PathBuf,
    /// Where `POST /visitors/{id}/details` goes: hookwire, or https://api.livechatinc.com.
    #[arg(long, env = "HOOKWIRE_URL", default_value = "http://127.0.0.1:8080")]
    api_url: String,
    /// The data set's id, shown to agents per integration.
    #[arg(long, default_value = "my-integration")]
    integration_id: String,
    /// Icon URL without the scheme.
    #[arg(long, default_value = "example.com/ico-64.png")]
    icon: String,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    hookwire_examples::launch::main("visitor-details", serve(Args::parse())).await
}

async fn serve(args: Args) -> hookwire_examples::launch::MainResult {
    // Read once up front so a wrong path fails now, not at the first chat.
    let db = CustomerDb::load(&args.customers).await?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    println!(
        "visitor-details listening on http://{}/ ({} customers in {}, details go to {})",
        listener.local_addr()?,
        db.len(),
        args.customers.display(),
        args.api_url
    );
    let config = Config {
        integration_id: args.integration_id,
        icon: args.icon,
        ..Config::new(args.customers, args.api_url)
    };
    visitor_details::run(listener, config).await?;
    Ok(())
}
