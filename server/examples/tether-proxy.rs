//! `tether-proxy`: a small round-robin TCP proxy in front of several
//! tether-server instances, standing in for a load balancer without sticky
//! sessions (`scripts/dev --redis`, the two-instance benchmark). The same
//! code the failover tests use (server/tests/support/proxy.rs). See `--help`.

use clap::Parser;
use std::io::Write as _;
use std::net::SocketAddr;

// `history` is for the tests.
#[allow(dead_code)]
#[path = "../tests/support/proxy.rs"]
mod proxy;

/// Round-robin TCP proxy: each connection goes to the next backend in
/// turn, skipping backends that refuse.
///
/// Prints one line `listening on http://<addr>` to stdout once bound.
///
/// Example: `tether-proxy --listen 127.0.0.1:3001 --backend 127.0.0.1:3101
/// --backend 127.0.0.1:3102`
#[derive(Debug, Parser)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// A backend's address (repeatable, at least one), in round-robin order.
    #[arg(long = "backend", value_name = "ADDR", required = true)]
    backends: Vec<SocketAddr>,
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let proxy = proxy::Proxy::bind(args.listen, args.backends).await?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "listening on {}", proxy.url())?;
        stdout.flush()?;
    }
    let _ = tokio::signal::ctrl_c().await;
    drop(proxy);
    Ok(())
}
