//! Typed readers of one configuration key: a value's own parse, ranges, quotas and secrets, each failing
//! with the key's name.

use std::{fmt, str::FromStr};

use super::{ConfigError, MIN_SECRET_BYTES, Quota, Secret};

pub(super) fn secret<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
) -> Result<Option<Secret>, ConfigError> {
    match get(key) {
        Some(value) if value.len() < MIN_SECRET_BYTES => {
            Err(invalid(key, format!("must be at least {MIN_SECRET_BYTES} bytes")))
        }
        value => Ok(value.map(Secret::new)),
    }
}

pub(super) fn quota<'a>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: &str,
) -> Result<Quota, ConfigError> {
    Quota::parse(get(key).unwrap_or(default)).map_err(|reason| invalid(key, reason))
}

pub(super) fn invalid(key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key, reason: reason.into() }
}

pub(super) fn parse<'a, T: FromStr>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: T,
) -> Result<T, ConfigError>
where
    T::Err: fmt::Display,
{
    get(key).map_or(Ok(default), |value| value.parse().map_err(|e: T::Err| invalid(key, e.to_string())))
}

pub(super) fn parse_in<'a, T>(
    get: impl Fn(&str) -> Option<&'a str>,
    key: &'static str,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: FromStr + PartialOrd + fmt::Display + Copy,
    T::Err: fmt::Display,
{
    let value = parse(get, key, default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(invalid(key, format!("must be between {} and {}", range.start(), range.end())))
    }
}
