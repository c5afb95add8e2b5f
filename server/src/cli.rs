//! The command line of `aerobook-server`: serve (default), `migrate`, and `admin` commands that work
//! against the configured database: accounts, and the invariant check.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{
    app::{AppError, accounts, invariants},
    config::Config,
    infra::{
        clock::Clock,
        passwords::{PasswordLimits, Passwords},
    },
    startup::{self, StartupError},
    store::Store,
};

#[derive(Debug, Parser)]
#[command(name = "aerobook-server", version, about = "Aerobook airline booking backend")]
pub struct Cli {
    /// TOML file with the same keys as the environment variables; the environment wins.
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve gRPC, gRPC-web and HTTP (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage accounts; check the database's invariants.
    #[command(subcommand)]
    Admin(AdminCommand),
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an operator (airline staff) account.
    CreateOperator {
        #[arg(long)]
        email: String,
        /// 10..=128 characters.
        #[arg(long)]
        password: String,
        #[arg(long, default_value = "Operator")]
        full_name: String,
    },
    /// Create a service account and print its client id and secret (the secret is shown only once).
    CreateServiceAccount {
        /// 1..=40 characters of a-z, 0-9 and -.
        #[arg(long)]
        name: String,
    },
    /// Check every invariant Aerobook promises (seats add up, no seat sold twice, one booking per key,
    /// confirmed bookings paid, refunds within charges, every email job there and none left running);
    /// prints each check and exits non-zero on a violation. Read-only: safe beside live traffic.
    Check,
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Startup(#[from] StartupError),
    #[error("{0}")]
    Rejected(#[from] AppError),
    /// The invariant check found violations; the whole report.
    #[error("invariants violated\n{0}")]
    Violated(String),
}

/// Runs an admin command and returns what it prints.
pub async fn run_admin(config: &Config, command: AdminCommand) -> Result<String, AdminError> {
    startup::migrate(config).await?;
    let store = Store::connect(&config.database).await.map_err(StartupError::from)?;
    let passwords = Passwords::new(PasswordLimits::ONE_AT_A_TIME);
    let output = match command {
        AdminCommand::CreateOperator { email, password, full_name } => {
            let operator =
                accounts::create_operator(&store, &passwords, &email, &password, &full_name, Clock::system().now())
                    .await?;
            format!("operator {} created (id {})\n", operator.email, operator.id)
        }
        AdminCommand::CreateServiceAccount { name } => {
            let (account, credentials) =
                accounts::create_service_account(&store, &passwords, &name, Clock::system().now()).await?;
            format!(
                "service account {name} created (id {})\nclient id:     {}\nclient secret: {}\n\
                 Sign in with Login(email = client id, password = client secret). The secret is not shown again.\n",
                account.id, credentials.client_id, credentials.client_secret
            )
        }
        AdminCommand::Check => {
            let report = invariants::check_invariants(&store, Clock::system().now()).await?;
            if !report.holds() {
                return Err(AdminError::Violated(report.to_string()));
            }
            report.to_string()
        }
    };
    Ok(output)
}
