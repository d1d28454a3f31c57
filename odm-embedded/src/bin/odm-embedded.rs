//! `odm-embedded`: run the in-process MongoDB-compatible server as a standalone program.

use clap::Parser;
use std::io::Write;
use std::net::IpAddr;
use std::process::ExitCode;

/// An in-memory MongoDB-compatible server speaking the MongoDB wire protocol.
///
/// Prints its connection string (`mongodb://HOST:PORT/`) as the first line of standard
/// output, then serves until interrupted (SIGINT or SIGTERM). Data is kept in memory only.
#[derive(Debug, Parser)]
#[command(name = "odm-embedded", version)]
struct Args {
    /// Address to listen on. Anything but a loopback address needs
    /// --allow-unauthenticated-network: this server has no authentication.
    #[arg(long, default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Allow listening on an address other than a loopback one, where anyone who can reach
    /// it can read and write everything.
    #[arg(long)]
    allow_unauthenticated_network: bool,
    /// Port to listen on; 0 picks a free port.
    #[arg(long, default_value_t = 27017)]
    port: u16,
    /// Replica set name reported to clients.
    #[arg(long, default_value = "rs0")]
    replica_set: String,
    /// Enable test-only commands (`configureFailPoint` with `failCommand`), like mongod's
    /// `--setParameter enableTestCommands=1`.
    #[arg(long)]
    enable_test_commands: bool,
    /// Most client connections open at once, like mongod's `--maxConns`; a connection
    /// beyond it is closed as soon as it arrives.
    #[arg(long, default_value_t = 1_000_000)]
    max_conns: usize,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let server = match odm_embedded::Server::builder()
        .bind(args.bind)
        .port(args.port)
        .replica_set_name(args.replica_set)
        .enable_test_commands(args.enable_test_commands)
        .max_connections(args.max_conns)
        .allow_unauthenticated_network(args.allow_unauthenticated_network)
        .start()
        .await
    {
        Ok(server) => server,
        Err(err) => {
            eprintln!(
                "odm-embedded: cannot listen on {}:{}: {err}",
                args.bind, args.port
            );
            return ExitCode::FAILURE;
        }
    };
    // Before the URI is printed: whoever reads it may signal right away.
    let stopped = stop_signal();
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", server.uri())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    stopped.await;
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Waits for SIGINT or SIGTERM. The handlers are installed when this is called, so a
/// signal that arrives before the future is awaited is not lost (nor kills the process
/// before it could shut down cleanly).
#[cfg(unix)]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
fn stop_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
