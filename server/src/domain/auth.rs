//! Who is calling: roles, the authenticated caller, and the rules for account fields.

use std::{fmt, str::FromStr};

use uuid::Uuid;

pub const MIN_PASSWORD_CHARS: usize = 10;
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MAX_EMAIL_LEN: usize = 254;
pub const MAX_FULL_NAME_CHARS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// A self-registered traveller.
    Customer,
    /// Airline staff.
    Operator,
    /// An internal service account.
    Service,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "CUSTOMER",
            Role::Operator => "OPERATOR",
            Role::Service => "SERVICE",
        }
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "CUSTOMER" => Ok(Role::Customer),
            "OPERATOR" => Ok(Role::Operator),
            "SERVICE" => Ok(Role::Service),
            other => Err(format!("unknown role {}", super::validation::quoted(other))),
        }
    }
}

/// The authenticated caller of a call, from a verified access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

/// An email address, trimmed and lower-cased, so one address is one account however it is typed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(text: &str) -> Result<Self, String> {
        let email = text.trim().to_lowercase();
        let invalid = || "must be an email address, e.g. name@example.com".to_owned();
        let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
        let well_formed = email.len() <= MAX_EMAIL_LEN
            && (1..=64).contains(&local.len())
            && domain.len() >= 3
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..")
            && email.chars().all(|c| c.is_ascii_graphic())
            && !domain.contains('@');
        if well_formed { Ok(Self(email)) } else { Err(invalid()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 10..=128 characters, any text but control characters (which no keyboard types, and
/// which would reach terminals and logs through a careless tool). Never logged (its `Debug` hides it) and
/// never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    pub fn new(text: &str) -> Result<Self, String> {
        let chars = text.chars().count();
        if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&chars) && !text.chars().any(char::is_control) {
            Ok(Self(text.to_owned()))
        } else {
            Err(format!("must be {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters, without control characters"))
        }
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A person's (or a service account's) display name: 1..=128 characters, no control characters.
pub fn full_name(text: &str) -> Result<String, String> {
    let name = text.trim();
    let chars = name.chars().count();
    if (1..=MAX_FULL_NAME_CHARS).contains(&chars) && !name.chars().any(char::is_control) {
        Ok(name.to_owned())
    } else {
        Err(format!("must be 1 to {MAX_FULL_NAME_CHARS} characters, without control characters"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ann.Lee+trips@Example.COM ").unwrap().as_str(), "ann.lee+trips@example.com");
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "ann@.com",
            "ann@example.",
            "a b@example.com",
            "ann@@x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(65))).is_err());
    }

    #[test]
    fn passwords_are_10_to_128_characters_and_never_printed() {
        assert!(Password::new("123456789").is_err());
        assert!(Password::new("1234567890").is_ok());
        assert!(Password::new(&"é".repeat(128)).is_ok(), "characters, not bytes");
        assert!(Password::new(&"x".repeat(129)).is_err());
        assert_eq!(format!("{:?}", Password::new("correct horse battery").unwrap()), "Password([redacted])");
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(full_name("  Ann Lee ").unwrap(), "Ann Lee");
        assert!(full_name("   ").is_err());
        assert!(full_name("Ann\nLee").is_err());
        assert!(full_name(&"x".repeat(129)).is_err());
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::Customer, Role::Operator, Role::Service] {
            assert_eq!(role.as_str().parse::<Role>().unwrap(), role);
        }
    }
}
