//! Money in minor units of a supported ISO 4217 currency.

use serde::{Deserialize, Serialize};

/// Currencies Aerobook prices in. Kept short on purpose: each one must be supported by the payment
/// provider account, and adding one is a product decision.
const SUPPORTED_CURRENCIES: &[&str] = &["AED", "BHD", "EGP", "EUR", "GBP", "KWD", "OMR", "QAR", "SAR", "USD"];

/// The largest price of one seat, in minor units: a guard against a misplaced decimal point.
pub const MAX_SEAT_PRICE_MINOR: i64 = 100_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CurrencyCode([u8; 3]);

impl CurrencyCode {
    pub fn parse(code: &str) -> Result<Self, String> {
        if !SUPPORTED_CURRENCIES.contains(&code) {
            return Err(format!("must be one of {}", SUPPORTED_CURRENCIES.join(", ")));
        }
        let bytes = code.as_bytes();
        Ok(Self([bytes[0], bytes[1], bytes[2]]))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from an entry of SUPPORTED_CURRENCIES, which is ASCII.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Digits after the decimal point (ISO 4217's minor unit).
    pub fn minor_digits(&self) -> u32 {
        match self.as_str() {
            "BHD" | "KWD" | "OMR" => 3,
            _ => 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: CurrencyCode,
    pub amount_minor: i64,
}

impl Money {
    /// A price of one seat: positive and at most [`MAX_SEAT_PRICE_MINOR`].
    pub fn seat_price(currency: &str, amount_minor: i64) -> Result<Self, (&'static str, String)> {
        let currency = CurrencyCode::parse(currency).map_err(|e| ("currency_code", e))?;
        if !(1..=MAX_SEAT_PRICE_MINOR).contains(&amount_minor) {
            return Err(("amount_minor", format!("must be between 1 and {MAX_SEAT_PRICE_MINOR}")));
        }
        Ok(Self { currency, amount_minor })
    }
}

/// For people: "SAR 450.00", "KWD 12.500".
impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let digits = self.currency.minor_digits();
        let scale = 10_i64.pow(digits);
        let sign = if self.amount_minor < 0 { "-" } else { "" };
        let amount = self.amount_minor.unsigned_abs();
        let (major, minor) = (amount / scale.unsigned_abs(), amount % scale.unsigned_abs());
        write!(f, "{} {sign}{major}.{minor:0width$}", self.currency.as_str(), width = digits as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_read_in_the_currency_s_own_minor_unit() {
        assert_eq!(Money::seat_price("SAR", 45_005).unwrap().to_string(), "SAR 450.05");
        assert_eq!(Money::seat_price("KWD", 12_500).unwrap().to_string(), "KWD 12.500");
        assert_eq!(Money::seat_price("EUR", 7).unwrap().to_string(), "EUR 0.07");
    }

    #[test]
    fn seat_prices_need_a_supported_currency_and_a_sane_amount() {
        let price = Money::seat_price("SAR", 45_000).unwrap();
        assert_eq!((price.currency.as_str(), price.amount_minor), ("SAR", 45_000));
        assert_eq!(Money::seat_price("sar", 1).unwrap_err().0, "currency_code");
        assert_eq!(Money::seat_price("XYZ", 1).unwrap_err().0, "currency_code");
        assert_eq!(Money::seat_price("SAR", 0).unwrap_err().0, "amount_minor");
        assert_eq!(Money::seat_price("SAR", MAX_SEAT_PRICE_MINOR + 1).unwrap_err().0, "amount_minor");
        assert!(Money::seat_price("SAR", MAX_SEAT_PRICE_MINOR).is_ok());
    }
}
