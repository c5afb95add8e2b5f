//! Where configuration comes from: the process environment and an optional TOML file, holding the same
//! keys. A name the server does not know is reported with the nearest known name (a typo otherwise passes
//! silently), and a renamed key is still read under its old name for one release, with a warning.

use std::{collections::BTreeMap, fmt, path::Path};

use super::ConfigError;

/// Every key the server reads. A config file may hold these; any other key is rejected, so a typo does not
/// pass silently.
const KEYS: &[&str] = &[
    "AEROBOOK_LISTEN_ADDR",
    "AEROBOOK_DATA_DIR",
    "DATABASE_URL",
    "AEROBOOK_DATABASE_SCHEMA",
    "AEROBOOK_DATABASE_MAX_CONNECTIONS",
    "AEROBOOK_DATABASE_READ_URL",
    "AEROBOOK_REPLICA_MAX_LAG_MS",
    "REDIS_URL",
    "AEROBOOK_REDIS_KEY_PREFIX",
    "AEROBOOK_SEED_DEMO_DATA",
    "AEROBOOK_DEMO_DAYS",
    "AEROBOOK_SEARCH_CACHE_TTL_SECONDS",
    "AEROBOOK_CORS_ORIGINS",
    "AEROBOOK_REQUEST_TIMEOUT_MS",
    "AEROBOOK_MAX_CONCURRENT_CALLS",
    "AEROBOOK_MAX_WAITING_CALLS",
    "AEROBOOK_MAX_WATCH_STREAMS",
    "AEROBOOK_MAX_WATCH_STREAMS_PER_CALLER",
    "AEROBOOK_MAX_MESSAGE_BYTES",
    "AEROBOOK_SHUTDOWN_GRACE_SECONDS",
    "AEROBOOK_LOG_FORMAT",
    "RUST_LOG",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_CERTIFICATE",
    "AEROBOOK_METRICS_ADDR",
    "AEROBOOK_TRACE_FILTER",
    "AEROBOOK_HEALTH_PROBE_INTERVAL_MS",
    "AEROBOOK_SHUTDOWN_DRAIN_SECONDS",
    "AEROBOOK_HTTP2_KEEPALIVE_SECONDS",
    "AEROBOOK_MAX_CONNECTION_AGE_SECONDS",
    "AEROBOOK_MAX_CONCURRENT_STREAMS",
    "AEROBOOK_JWT_SECRET",
    "AEROBOOK_JWT_PREVIOUS_SECRET",
    "AEROBOOK_ACCESS_TOKEN_TTL_SECONDS",
    "AEROBOOK_REFRESH_TOKEN_TTL_SECONDS",
    "AEROBOOK_REFRESH_SESSION_MAX_SECONDS",
    "AEROBOOK_PASSWORD_CHECKS_AT_ONCE",
    "AEROBOOK_PASSWORD_CHECKS_QUEUED",
    "AEROBOOK_RATE_LIMITS",
    "AEROBOOK_RATE_LIMIT_AUTH",
    "AEROBOOK_RATE_LIMIT_SEARCH",
    "AEROBOOK_RATE_LIMIT_READ",
    "AEROBOOK_RATE_LIMIT_MUTATION",
    "AEROBOOK_RATE_LIMIT_LOGIN_FAILURES",
    "AEROBOOK_RATE_LIMIT_WEBHOOK",
    "AEROBOOK_HOLD_TTL_SECONDS",
    "AEROBOOK_MAX_HOLDS_PER_USER",
    "AEROBOOK_SWEEP_INTERVAL_SECONDS",
    "AEROBOOK_TICKET_PREFIX",
    "AEROBOOK_CHECK_IN_OPENS_HOURS",
    "STRIPE_SECRET_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "STRIPE_API_BASE",
    "AEROBOOK_PAYMENT_TIMEOUT_MS",
    "AEROBOOK_SIMULATED_PAYMENT_DELAY_MS",
    "AEROBOOK_RECONCILE_INTERVAL_SECONDS",
    "AEROBOOK_PAYMENTS",
    "AEROBOOK_TRUSTED_PROXIES",
    "AEROBOOK_SMTP_URL",
    "AEROBOOK_MAIL_FROM",
    "AEROBOOK_SMTP_TIMEOUT_MS",
    "AEROBOOK_JOB_CONCURRENCY",
    "AEROBOOK_JOB_POLL_INTERVAL_MS",
];

/// Keys renamed, old name first: read under the old name for one release (when the new one is absent),
/// with a warning at start.
const RENAMED: &[(&str, &str)] = &[("AEROBOOK_RATE_LIMIT_LOGIN_EMAIL", "AEROBOOK_RATE_LIMIT_LOGIN_FAILURES")];

/// `AEROBOOK_*` variables that belong to the project's own tools, not to the server: a developer's shell
/// may export them, and they are no typo.
const TOOL_VARIABLES: &[&str] =
    &["AEROBOOK_CONFIG", "AEROBOOK_SERVER_BIN", "AEROBOOK_URL", "AEROBOOK_RELIABILITY_REPORT", "AEROBOOK_SOAK_ROUNDS"];
const TOOL_PREFIX: &str = "AEROBOOK_TEST_";

/// Something about the configuration's names that an operator should fix, logged as a warning at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// An `AEROBOOK_*` environment variable the server does not read.
    Unknown { name: String, nearest: &'static str },
    /// A renamed key set under its old name, read for now.
    Renamed { old: &'static str, new: &'static str },
    /// A renamed key set under both names: the new name's value is read.
    RenamedShadowed { old: &'static str, new: &'static str },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown { name, nearest } => {
                write!(f, "unknown setting {name} is ignored; the nearest known name is {nearest}")
            }
            Self::Renamed { old, new } => {
                write!(f, "{old} is deprecated and will stop working in the next release: rename it {new}")
            }
            Self::RenamedShadowed { old, new } => write!(f, "{old} is deprecated and ignored: {new} is set"),
        }
    }
}

/// The file's values, overridden by the environment's values of the keys the server reads, and a notice
/// for each `AEROBOOK_*` variable that is none of them. Renamed keys are read under their new names in each
/// source before the two meet, so the environment wins under either name.
pub fn merge(file: BTreeMap<String, String>, env: BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<Notice>) {
    let mut notices = Vec::new();
    let mut read = BTreeMap::new();
    for (key, value) in env {
        if is_known(&key) {
            read.insert(key, value);
        } else if key.starts_with("AEROBOOK_")
            && !TOOL_VARIABLES.contains(&key.as_str())
            && !key.starts_with(TOOL_PREFIX)
        {
            notices.push(Notice::Unknown { nearest: nearest_key(&key), name: key });
        }
    }
    let (mut merged, mut from_file) = resolve_renamed(&file);
    let (read, mut from_env) = resolve_renamed(&read);
    notices.append(&mut from_file);
    notices.append(&mut from_env);
    merged.extend(read);
    (merged, notices)
}

/// Reads renamed keys under their new names: the old name's value when only it is set.
pub fn resolve_renamed(source: &BTreeMap<String, String>) -> (BTreeMap<String, String>, Vec<Notice>) {
    let mut resolved = source.clone();
    let mut notices = Vec::new();
    for &(old, new) in RENAMED {
        let Some(value) = resolved.remove(old) else { continue };
        if resolved.contains_key(new) {
            notices.push(Notice::RenamedShadowed { old, new });
        } else {
            resolved.insert(new.to_owned(), value);
            notices.push(Notice::Renamed { old, new });
        }
    }
    (resolved, notices)
}

fn is_known(key: &str) -> bool {
    KEYS.contains(&key) || RENAMED.iter().any(|(old, _)| *old == key)
}

/// The known key closest to `name` in edit distance (ties: the first in [`KEYS`]).
fn nearest_key(name: &str) -> &'static str {
    KEYS.iter().copied().min_by_key(|key| edit_distance(name, key)).unwrap_or(KEYS[0])
}

/// Levenshtein distance, in bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, &x) in a.iter().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, &y) in b.iter().enumerate() {
            current[j + 1] = (previous[j] + usize::from(x != y)).min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}

/// A TOML file of `KEY = value` pairs; a key the server does not read is an error (the file is the
/// operator's own, so a typo fails the start rather than warning).
pub fn read_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::File { path: path.to_owned(), reason: e.to_string() })?;
    parse_file(&text, path)
}

/// The pairs of a config file's `text`; errors name `path`.
pub fn parse_file(text: &str, path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let fail = |reason: String| ConfigError::File { path: path.to_owned(), reason };
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| fail(e.to_string()))?;
    table
        .into_iter()
        .map(|(key, value)| {
            if !is_known(&key) {
                return Err(fail(format!("unknown key {key}")));
            }
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    return Err(fail(format!("{key}: expected a string, number or boolean, got {other}")));
                }
            };
            Ok((key, value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    /// Every setting name the configuration's code reads is in [`KEYS`]: a name missing there is dropped
    /// from the environment as a typo, so its setting would silently never apply (as
    /// `AEROBOOK_DATABASE_READ_URL` once did).
    #[test]
    fn every_setting_the_configuration_reads_is_a_known_key() {
        let readers = [
            include_str!("mod.rs"),
            include_str!("mail.rs"),
            include_str!("payments.rs"),
            include_str!("read.rs"),
            include_str!("replicas.rs"),
            include_str!("values.rs"),
        ];
        let mut names = Vec::new();
        for reader in readers {
            let production = reader.split("#[cfg(test)]").next().unwrap_or(reader);
            // Setting names are the string literals of capitals, digits and underscores, with one underscore
            // at least ("DATABASE_URL", "AEROBOOK_...").
            for literal in production.split('"').skip(1).step_by(2) {
                let is_name = literal.contains('_')
                    && literal.starts_with(|c: char| c.is_ascii_uppercase())
                    && literal.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
                if is_name {
                    names.push(literal);
                }
            }
        }
        assert!(names.contains(&"AEROBOOK_DATABASE_READ_URL") && names.len() > 40, "{names:?}");
        let unknown: Vec<_> =
            names.into_iter().filter(|name| !is_known(name) && !TOOL_VARIABLES.contains(name)).collect();
        assert!(unknown.is_empty(), "read but not in KEYS: {unknown:?}");
    }

    #[test]
    fn an_unknown_aerobook_variable_is_reported_with_the_nearest_name() {
        let (values, notices) = merge(
            BTreeMap::new(),
            pairs(&[
                ("AEROBOOK_MAX_HOLD_PER_USER", "3"),
                ("AEROBOOK_DEMO_DAYS", "2"),
                ("AEROBOOK_SERVER_BIN", "/bin/true"),
                ("AEROBOOK_TEST_SMTP_PYTHON", "python3"),
                ("PATH", "/bin"),
            ]),
        );
        assert_eq!(values, pairs(&[("AEROBOOK_DEMO_DAYS", "2")]));
        assert_eq!(
            notices,
            [Notice::Unknown { name: "AEROBOOK_MAX_HOLD_PER_USER".into(), nearest: "AEROBOOK_MAX_HOLDS_PER_USER" }]
        );
        assert_eq!(
            notices[0].to_string(),
            "unknown setting AEROBOOK_MAX_HOLD_PER_USER is ignored; the nearest known name is AEROBOOK_MAX_HOLDS_PER_USER"
        );
    }

    #[test]
    fn a_renamed_key_is_read_under_its_old_name_unless_the_new_one_is_set() {
        let old = "AEROBOOK_RATE_LIMIT_LOGIN_EMAIL";
        let new = "AEROBOOK_RATE_LIMIT_LOGIN_FAILURES";
        let (merged, notices) = merge(BTreeMap::new(), pairs(&[(old, "9/60")]));
        assert_eq!(merged, pairs(&[(new, "9/60")]));
        assert_eq!(notices, [Notice::Renamed { old, new }]);
        // The environment wins over the file, under either name.
        let (merged, _) = merge(pairs(&[(new, "2/60")]), pairs(&[(old, "9/60")]));
        assert_eq!(merged, pairs(&[(new, "9/60")]));

        let (resolved, notices) = resolve_renamed(&pairs(&[(old, "9/60"), (new, "4/60")]));
        assert_eq!(resolved, pairs(&[(new, "4/60")]));
        assert_eq!(notices, [Notice::RenamedShadowed { old, new }]);
    }

    #[test]
    fn edit_distance_counts_single_byte_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }
}
