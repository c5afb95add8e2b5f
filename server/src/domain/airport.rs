//! Airports as reference data: an IATA code, names for people, the country, and the IANA time zone in
//! which flights' local times and dates are read.

use std::fmt;

use super::{
    flight::AirportCode,
    validation::{ValidationError, Violations, quoted},
};

/// Longest airport or city name.
pub const MAX_NAME_CHARS: usize = 128;
/// Longest `ListAirports` query.
pub const MAX_QUERY_CHARS: usize = 64;

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(code: &str) -> Result<Self, String> {
        match code.as_bytes() {
            [a, b] if a.is_ascii_uppercase() && b.is_ascii_uppercase() => Ok(Self([*a, *b])),
            _ => Err("must be an ISO 3166-1 alpha-2 country code in upper case, e.g. SA".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A valid IANA time zone name, e.g. `Asia/Riyadh`.
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse::<chrono_tz::Tz>().map_err(|_| format!("{} is not an IANA time zone, e.g. Asia/Riyadh", quoted(name)))
}

/// A name shown to people: 1..=128 characters, no control characters, no surrounding white space.
pub fn display_name(text: &str) -> Result<String, String> {
    let count = text.chars().count();
    if text.trim() != text || !(1..=MAX_NAME_CHARS).contains(&count) || text.chars().any(char::is_control) {
        return Err(format!(
            "must be 1 to {MAX_NAME_CHARS} characters without control characters or surrounding spaces"
        ));
    }
    Ok(text.to_owned())
}

/// The text a `ListAirports` call filters by: `None` lists everything.
pub fn search_query(text: &str) -> Result<Option<String>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    if text.chars().count() > MAX_QUERY_CHARS || text.chars().any(char::is_control) {
        return Err(format!("must be at most {MAX_QUERY_CHARS} characters without control characters"));
    }
    Ok(Some(text.to_owned()))
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Airport {
    pub code: AirportCode,
    pub name: String,
    pub city: String,
    pub country: CountryCode,
    pub time_zone: chrono_tz::Tz,
}

/// The fields of an airport as a caller sent them, before validation.
pub struct AirportFields<'a> {
    pub code: &'a str,
    pub name: &'a str,
    pub city: &'a str,
    pub country_code: &'a str,
    pub time_zone: &'a str,
}

impl Airport {
    /// Validates every field; violations are named `{prefix}.{field}` (e.g. `airport.time_zone`).
    pub fn parse(fields: AirportFields<'_>, prefix: &str) -> Result<Self, ValidationError> {
        let mut v = Violations::new();
        let field = |name: &str| format!("{prefix}.{name}");
        let code = v.check(field("code"), AirportCode::parse(fields.code));
        let name = v.check(field("name"), display_name(fields.name));
        let city = v.check(field("city"), display_name(fields.city));
        let country = v.check(field("country_code"), CountryCode::parse(fields.country_code));
        let time_zone = v.check(field("time_zone"), time_zone(fields.time_zone));
        v.finish_with(|| {
            Some(Airport { code: code?, name: name?, city: city?, country: country?, time_zone: time_zone? })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields<'a>(time_zone: &'a str, country_code: &'a str) -> AirportFields<'a> {
        AirportFields { code: "NRT", name: "Narita International Airport", city: "Tokyo", country_code, time_zone }
    }

    #[test]
    fn a_valid_airport_parses() {
        let airport = Airport::parse(fields("Asia/Tokyo", "JP"), "airport").unwrap();
        assert_eq!((airport.code.as_str(), airport.country.as_str()), ("NRT", "JP"));
        assert_eq!(airport.time_zone, chrono_tz::Asia::Tokyo);
    }

    #[test]
    fn every_bad_field_is_named_under_the_prefix() {
        let bad =
            AirportFields { code: "nrt", name: "", city: " Tokyo", country_code: "JPN", time_zone: "Mars/Olympus" };
        let error = Airport::parse(bad, "airport").unwrap_err();
        let named: Vec<&str> = error.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            named,
            ["airport.code", "airport.name", "airport.city", "airport.country_code", "airport.time_zone"]
        );
        assert!(Airport::parse(fields("asia/tokyo", "JP"), "airport").is_err(), "IANA names are case-sensitive");
        assert!(display_name(&"x".repeat(MAX_NAME_CHARS + 1)).is_err());
        assert!(display_name("a\tb").is_err());
    }

    #[test]
    fn queries_are_trimmed_and_bounded() {
        assert_eq!(search_query("  "), Ok(None));
        assert_eq!(search_query(" tok "), Ok(Some("tok".into())));
        assert!(search_query(&"q".repeat(MAX_QUERY_CHARS + 1)).is_err());
    }
}
