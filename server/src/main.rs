//! `aerobook-server`: runs the server (default), `migrate`s, or runs an `admin` command. Configuration
//! comes from the environment and an optional `--config` file; see the README.

use std::process::ExitCode;

use aerobook_server::{Cli, Command, Config, StartupError, migrate, run_admin, run_when_ready, telemetry};
use clap::Parser as _;

/// jemalloc: about a quarter less of the server's CPU per flash-sale decision than the system allocator, for
/// about 12 MiB more at the sale's peak with 10,000 streams open (`docs/benchmarks.md`, issue 30).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("aerobook-server: configuration error: {error}");
            return ExitCode::from(2);
        }
    };
    let telemetry = match telemetry::init(&config) {
        Ok(telemetry) => telemetry,
        Err(error) => {
            eprintln!("aerobook-server: telemetry: {error}");
            return ExitCode::from(2);
        }
    };
    for notice in &config.notices {
        tracing::warn!(%notice, "configuration");
    }
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config, &telemetry).await,
        Command::Migrate => migrate(&config).await.inspect(|()| tracing::info!("migrations applied")),
        Command::Admin(command) => match run_admin(&config, command).await {
            Ok(output) => {
                print!("{output}");
                return ExitCode::SUCCESS;
            }
            Err(error) => {
                eprintln!("aerobook-server: {error}");
                return ExitCode::FAILURE;
            }
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "aerobook-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Listens at once (health answers NOT_SERVING until the database is ready), then serves until SIGTERM.
async fn serve(config: Config, telemetry: &telemetry::Telemetry) -> Result<(), StartupError> {
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await.map_err(StartupError::Listen)?;
    run_when_ready(config, listener, telemetry.prometheus_registry(), shutdown_signal()).await
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
