//! A production-like deployment for the process tests: PostgreSQL and Redis from `DATABASE_URL` and
//! `REDIS_URL` (a fresh schema and key prefix per test), the operators' invariant check, and the scenario's
//! line in `scripts/reliability`'s report.

use sea_orm::{ConnectionTrait as _, DatabaseConnection};

use super::JWT_SECRET;

/// The variable's value; `None` (the test is skipped, saying so) when unset, except under CI, where a missing
/// service fails the test instead of letting it pass empty.
pub fn required(variable: &str) -> Option<String> {
    let value = std::env::var(variable).ok();
    if value.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must set {variable}");
        eprintln!("skipped: {variable} is not set");
    }
    value
}

/// A schema of its own on `DATABASE_URL` and a Redis key prefix of its own on `REDIS_URL`.
pub struct Deployment {
    pub database_url: String,
    pub redis_url: String,
    pub schema: String,
    pub prefix: String,
    admin: DatabaseConnection,
}

impl Deployment {
    /// `None` where [`required`] skips the test.
    pub async fn on_postgres_and_redis() -> Option<Self> {
        let (database_url, redis_url) = (required("DATABASE_URL")?, required("REDIS_URL")?);
        let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
        let admin = sea_orm::Database::connect(&database_url).await.expect("PostgreSQL");
        admin.execute_unprepared(&format!("CREATE SCHEMA {schema}")).await.expect("schema");
        let prefix = format!("aerobook-test:{}:", uuid::Uuid::new_v4().simple());
        Some(Self { database_url, redis_url, schema, prefix, admin })
    }

    /// The settings of an instance of this deployment, its database reached at `database_url`.
    pub fn settings<'a>(&'a self, database_url: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("DATABASE_URL", database_url),
            ("AEROBOOK_DATABASE_SCHEMA", self.schema.as_str()),
            ("REDIS_URL", self.redis_url.as_str()),
            ("AEROBOOK_REDIS_KEY_PREFIX", self.prefix.as_str()),
            ("AEROBOOK_PAYMENTS", "simulated"),
            ("AEROBOOK_SEED_DEMO_DATA", "true"),
            ("AEROBOOK_DEMO_DAYS", "2"),
            ("AEROBOOK_RATE_LIMITS", "disabled"),
            ("RUST_LOG", "warn,aerobook_server::startup=info"),
        ]
    }

    /// Runs `aerobook-server admin check` as operators would after an incident: asserts it exits zero and
    /// reports no violation; returns how many checks passed.
    pub async fn admin_check(&self) -> usize {
        let check = tokio::process::Command::new(env!("CARGO_BIN_EXE_aerobook-server"))
            .args(["admin", "check"])
            .env_clear()
            .envs(self.settings(&self.database_url))
            .env("AEROBOOK_JWT_SECRET", JWT_SECRET)
            .output()
            .await
            .expect("admin check runs");
        let printed = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "{printed}{}", String::from_utf8_lossy(&check.stderr));
        assert!(printed.contains(" checks, 0 violations"), "{printed}");
        printed.lines().filter(|line| line.starts_with("ok  ")).count()
    }

    pub async fn drop_schema(self) {
        self.admin.execute_unprepared(&format!("DROP SCHEMA {} CASCADE", self.schema)).await.expect("schema dropped");
    }
}

/// The scenario's line of `scripts/reliability`'s report, when one is asked for
/// (`AEROBOOK_RELIABILITY_REPORT`); its invariant check passed, or the test failed before.
pub fn record(scenario: &str, calls: usize, faults: usize, invariant_checks: usize) {
    use std::io::Write as _;
    let Some(path) = std::env::var_os("AEROBOOK_RELIABILITY_REPORT") else { return };
    let line = serde_json::json!({
        "scenario": scenario,
        "backend": "postgres+redis",
        "calls": calls,
        "faults": faults,
        "invariant_checks": invariant_checks,
        "violations": 0,
    });
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path).expect("the reliability report");
    writeln!(file, "{line}").expect("a line of the reliability report");
}
