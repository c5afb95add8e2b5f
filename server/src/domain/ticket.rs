//! E-tickets: one per passenger and segment of a confirmed booking, numbered with the airline's prefix and a
//! serial unique across instances (the database's unique index decides).

use uuid::Uuid;

string_enum!(
    /// Where a ticket is: OPEN (valid for travel), CHECKED_IN, BOARDED, or VOID (its booking cancelled or
    /// refunded, or its flight changed).
    TicketStatus {
        Open => "OPEN",
        CheckedIn => "CHECKED_IN",
        Boarded => "BOARDED",
        Void => "VOID",
    }
);

/// Digits after the prefix: 3 + 10 make the 13 of a ticket number.
const SERIAL_DIGITS: u32 = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// 13 digits.
    pub ticket_number: String,
    /// The passenger's position in the booking.
    pub passenger_index: usize,
    pub flight_id: Uuid,
    pub status: TicketStatus,
    /// The flight's check-in sequence number, from check-in on.
    pub sequence_number: Option<u16>,
}

/// The three digits every ticket number starts with (`AEROBOOK_TICKET_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPrefix(String);

impl TicketPrefix {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.len() == 3 && text.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(text.to_owned()))
        } else {
            Err("must be 3 digits".into())
        }
    }

    /// A ticket number with a random serial: the database's unique index turns the rare repeat away, and
    /// another draw is made.
    pub fn draw(&self, rng: &mut impl rand::Rng) -> String {
        let serial = rng.random_range(0..10_u64.pow(SERIAL_DIGITS));
        format!("{}{serial:010}", self.0)
    }
}

impl Default for TicketPrefix {
    fn default() -> Self {
        Self("999".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_thirteen_digits_after_the_prefix() {
        let prefix = TicketPrefix::parse("065").unwrap();
        let mut rng = rand::rng();
        for _ in 0..1_000 {
            let number = prefix.draw(&mut rng);
            assert!(number.len() == 13 && number.starts_with("065") && number.bytes().all(|b| b.is_ascii_digit()));
        }
        for bad in ["", "99", "9999", "a99"] {
            assert!(TicketPrefix::parse(bad).is_err(), "{bad:?}");
        }
    }
}
