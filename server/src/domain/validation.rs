//! Field violations, collected so one response names every bad field at once.

use std::fmt;

/// One bad field: its proto field path (`cabins[1].first_row`, `idempotency-key`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

/// The input was rejected; nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ValidationError {
    pub violations: Vec<FieldViolation>,
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid input:")?;
        for v in &self.violations {
            write!(f, " {}: {};", v.field, v.description)?;
        }
        Ok(())
    }
}

impl ValidationError {
    pub fn single(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { violations: vec![FieldViolation { field: field.into(), description: description.into() }] }
    }
}

/// Most violations one response lists; past it the caller has enough to fix first. With descriptions
/// and field names bounded too, an error's details stay far below a client's metadata limit.
pub const MAX_VIOLATIONS: usize = 50;
/// Characters of a caller's value an error message quotes: enough to recognise it, never the whole value.
pub const QUOTED_CHARS: usize = 32;

/// `value` as an error message may quote it: escaped (control characters, quotes) and, past
/// [`QUOTED_CHARS`] characters, cut with a note of its length. An error never echoes what it was sent in
/// full: a 70,000-character value would otherwise travel back in the error's trailers.
pub fn quoted(value: &str) -> String {
    let length = value.chars().count();
    if length <= QUOTED_CHARS {
        return format!("{value:?}");
    }
    let prefix: String = value.chars().take(QUOTED_CHARS).collect();
    format!("{prefix:?}... ({length} characters)")
}

/// Collects violations while a request is converted into domain values.
#[derive(Debug, Default)]
#[must_use = "call finish() to turn the collected violations into a result"]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        if self.0.len() < MAX_VIOLATIONS {
            self.0.push(FieldViolation { field: field.into(), description: description.into() });
        }
    }

    /// Whether a violation of `field` is recorded already.
    pub fn names(&self, field: &str) -> bool {
        self.0.iter().any(|violation| violation.field == field)
    }

    /// Keeps the value of a successful parse, records the failure of another under `field`.
    pub fn check<T>(&mut self, field: impl Into<String>, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|description| self.add(field, description)).ok()
    }

    /// `Ok` when nothing was recorded.
    pub fn finish(self) -> Result<(), ValidationError> {
        if self.0.is_empty() { Ok(()) } else { Err(ValidationError { violations: self.0 }) }
    }

    /// `value` when nothing was recorded; callers pass the fully parsed value built from the `check`ed parts.
    pub fn finish_with<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ValidationError> {
        if let (true, Some(value)) = (self.0.is_empty(), value()) {
            return Ok(value);
        }
        debug_assert!(!self.0.is_empty(), "a missing value must come with a violation");
        Err(ValidationError { violations: self.0 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_violation_in_order() {
        let mut v = Violations::new();
        assert_eq!(v.check("a", Ok::<_, String>(1)), Some(1));
        assert_eq!(v.check::<u8>("b", Err("bad b".into())), None);
        v.add("c", "bad c");
        let err = v.finish().unwrap_err();
        let fields: Vec<_> = err.violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["b", "c"]);
        assert_eq!(err.to_string(), "invalid input: b: bad b; c: bad c;");
    }

    #[test]
    fn quoted_values_are_escaped_and_cut() {
        assert_eq!(quoted("Asia/Riyadh"), "\"Asia/Riyadh\"");
        assert_eq!(quoted("a\u{0}b\n"), "\"a\\0b\\n\"");
        let long = quoted(&"é".repeat(70_000));
        assert_eq!(long, format!("{:?}... (70000 characters)", "é".repeat(QUOTED_CHARS)));
    }

    #[test]
    fn the_list_is_bounded() {
        let mut v = Violations::new();
        for i in 0..MAX_VIOLATIONS * 3 {
            v.add(format!("f{i}"), "bad");
        }
        assert_eq!(v.finish().unwrap_err().violations.len(), MAX_VIOLATIONS);
    }

    #[test]
    fn finish_with_returns_the_value_only_when_clean() {
        assert_eq!(Violations::new().finish_with(|| Some(7)), Ok(7));
        let mut v = Violations::new();
        v.add("x", "no");
        assert!(v.finish_with(|| None::<u8>).is_err());
    }
}
