//! The bar coded boarding pass string of the contract (`BoardingPass.bcbp`): IATA Resolution 792, format
//! `M`, one leg per pass, as a gate scanner reads it. The server encodes it; the Rust SDK and the server's
//! boarding scan decode it. Both live here, beside the contract, so they cannot drift apart.
//!
//! A pass is the 60 characters of mandatory items (name, e-ticket indicator, booking reference, from, to,
//! carrier, flight, Julian date, compartment, seat, check-in sequence number, passenger status, and the
//! size of what follows), then the conditional items a scanner reads the ticket number from: version
//! [`VERSION`], no unique conditional items, and one leg's repeated items (the airline numeric code and the
//! document serial number, which together are the 13-digit ticket number, and the marketing carrier).

/// The Resolution 792 version of the conditional items this encoder writes.
pub const VERSION: char = '6';
/// Length of the mandatory items of one leg.
const MANDATORY_LEN: usize = 60;
/// Length of the repeated conditional items written for the leg (airline numeric code through fast track).
const REPEATED_LEN: usize = 42;

/// One leg's boarding pass, field by field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bcbp {
    /// `SURNAME/GIVEN`, upper-case Latin letters, at most 20 characters.
    pub passenger_name: String,
    /// `E`: an electronic ticket.
    pub electronic_ticket: bool,
    /// The operating carrier's booking reference (PNR), at most 7 characters.
    pub booking_reference: String,
    /// IATA airport codes.
    pub from: String,
    pub to: String,
    /// The operating carrier's designator, 2 or 3 characters.
    pub carrier: String,
    /// 1..=9999, with an optional one-letter suffix.
    pub flight_number: u16,
    pub flight_suffix: Option<char>,
    /// The flight's date, as its day of the year (1..=366).
    pub day_of_year: u16,
    /// The compartment (cabin) code, e.g. `Y`.
    pub compartment: char,
    /// Row and letter (`12C`), or `INF` for an infant on a lap.
    pub seat: String,
    /// The check-in sequence number, 1..=9999.
    pub sequence_number: u16,
    /// `1`: checked in, ticket issued.
    pub passenger_status: char,
    /// The 13-digit ticket number (airline numeric code and document serial number), when encoded.
    pub ticket_number: Option<String>,
}

/// Why a pass cannot be written or read: the item at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{item}: {problem}")]
pub struct BcbpError {
    pub item: &'static str,
    pub problem: String,
}

fn fail<T>(item: &'static str, problem: impl Into<String>) -> Result<T, BcbpError> {
    Err(BcbpError { item, problem: problem.into() })
}

impl Bcbp {
    /// The pass as its barcode carries it.
    pub fn encode(&self) -> Result<String, BcbpError> {
        let mut pass = String::with_capacity(MANDATORY_LEN + 6 + REPEATED_LEN);
        pass.push_str("M1");
        pass.push_str(&padded("passenger_name", &self.passenger_name, 1, 20, is_name_char)?);
        pass.push(if self.electronic_ticket { 'E' } else { ' ' });
        pass.push_str(&padded("booking_reference", &self.booking_reference, 1, 7, is_code_char)?);
        pass.push_str(&padded("from", &self.from, 3, 3, |c| c.is_ascii_uppercase())?);
        pass.push_str(&padded("to", &self.to, 3, 3, |c| c.is_ascii_uppercase())?);
        pass.push_str(&padded("carrier", &self.carrier, 2, 3, is_code_char)?);
        if !(1..=9999).contains(&self.flight_number) {
            return fail("flight_number", "must be 1..=9999");
        }
        let suffix = match self.flight_suffix {
            Some(letter) if letter.is_ascii_uppercase() => letter,
            Some(_) => return fail("flight_suffix", "must be an upper-case letter"),
            None => ' ',
        };
        pass.push_str(&format!("{:04}{suffix}", self.flight_number));
        if !(1..=366).contains(&self.day_of_year) {
            return fail("day_of_year", "must be 1..=366");
        }
        pass.push_str(&format!("{:03}", self.day_of_year));
        if !self.compartment.is_ascii_uppercase() {
            return fail("compartment", "must be an upper-case letter");
        }
        pass.push(self.compartment);
        pass.push_str(&seat_item(&self.seat)?);
        if !(1..=9999).contains(&self.sequence_number) {
            return fail("sequence_number", "must be 1..=9999");
        }
        pass.push_str(&format!("{:04} ", self.sequence_number));
        if !self.passenger_status.is_ascii_alphanumeric() {
            return fail("passenger_status", "must be a letter or a digit");
        }
        pass.push(self.passenger_status);
        let conditional = match &self.ticket_number {
            Some(ticket) => conditional_items(ticket, &self.carrier)?,
            None => String::new(),
        };
        pass.push_str(&format!("{:02X}{conditional}", conditional.len()));
        Ok(pass)
    }

    /// Reads a one-leg pass of format `M` (any version), ignoring items it does not know and any security
    /// data after them.
    pub fn decode(pass: &str) -> Result<Self, BcbpError> {
        if !pass.is_ascii() {
            return fail("pass", "must be ASCII");
        }
        if pass.len() < MANDATORY_LEN {
            return fail("pass", format!("is {} characters; the mandatory items take {MANDATORY_LEN}", pass.len()));
        }
        if &pass[0..2] != "M1" {
            return fail("format", "must be M with one leg (M1)");
        }
        let item = |from: usize, to: usize| pass[from..to].trim_end().to_owned();
        let number = |name: &'static str, text: &str| -> Result<u16, BcbpError> {
            text.trim().parse().or_else(|_| fail(name, format!("{text:?} is not a number")))
        };
        let flight = &pass[39..44];
        let conditional_len = usize::from_str_radix(&pass[58..60], 16)
            .or_else(|_| fail("conditional_size", format!("{:?} is not hexadecimal", &pass[58..60])))?;
        let conditional = pass
            .get(MANDATORY_LEN..MANDATORY_LEN + conditional_len)
            .map_or_else(|| fail("conditional_size", "runs past the end of the pass"), Ok)?;
        Ok(Self {
            passenger_name: item(2, 22),
            electronic_ticket: &pass[22..23] == "E",
            booking_reference: item(23, 30),
            from: item(30, 33),
            to: item(33, 36),
            carrier: item(36, 39),
            flight_number: number("flight_number", &flight[..4])?,
            flight_suffix: flight[4..].chars().next().filter(char::is_ascii_uppercase),
            day_of_year: number("day_of_year", &pass[44..47])?,
            compartment: pass.as_bytes()[47].into(),
            seat: seat_from_item(&pass[48..52]),
            sequence_number: number("sequence_number", &pass[52..56])?,
            passenger_status: pass.as_bytes()[57].into(),
            ticket_number: ticket_from_conditional(conditional)?,
        })
    }
}

/// `text` left-justified in `width` characters, `min..=width` of them, each passing `allowed`.
fn padded(
    item: &'static str,
    text: &str,
    min: usize,
    width: usize,
    allowed: fn(char) -> bool,
) -> Result<String, BcbpError> {
    if !(min..=width).contains(&text.len()) || !text.chars().all(allowed) {
        return fail(item, format!("must be {min}..={width} characters of the pass's alphabet"));
    }
    Ok(format!("{text:<width$}"))
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_uppercase() || matches!(c, '/' | ' ' | '-')
}

fn is_code_char(c: char) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit()
}

/// A seat as the pass writes it: the row in three digits and the letter (`012C`), or `INF `.
fn seat_item(seat: &str) -> Result<String, BcbpError> {
    if seat == "INF" {
        return Ok("INF ".to_owned());
    }
    let (row, letter) = seat.split_at(seat.len().saturating_sub(1));
    match (row.parse::<u16>(), letter.chars().next()) {
        (Ok(row @ 1..=999), Some(letter)) if letter.is_ascii_uppercase() => Ok(format!("{row:03}{letter}")),
        _ => fail("seat", "must be a row of 1..=999 and a letter, or INF"),
    }
}

/// The seat as people write it: `012C` reads `12C`.
fn seat_from_item(item: &str) -> String {
    let item = item.trim_end();
    match item.split_at(item.len().saturating_sub(1)) {
        (row, letter) if !row.is_empty() && row.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{}{letter}", row.trim_start_matches('0'))
        }
        _ => item.to_owned(),
    }
}

/// Version, no unique items, and the leg's repeated items: ticket number, no selectee or document
/// verification flags, the marketing carrier, no frequent flyer, ID/AD, baggage allowance or fast track.
fn conditional_items(ticket: &str, carrier: &str) -> Result<String, BcbpError> {
    if ticket.len() != 13 || !ticket.bytes().all(|b| b.is_ascii_digit()) {
        return fail("ticket_number", "must be 13 digits");
    }
    let repeated = format!("{ticket}  {carrier:<3}{:<3}{:<16}{:<1}{:<3}{:<1}", "", "", "", "", "");
    debug_assert_eq!(repeated.len(), REPEATED_LEN);
    Ok(format!(">{VERSION}00{:02X}{repeated}", repeated.len()))
}

/// The ticket number of the conditional items, when they hold one.
fn ticket_from_conditional(conditional: &str) -> Result<Option<String>, BcbpError> {
    if conditional.is_empty() {
        return Ok(None);
    }
    let hex = |item: &'static str, text: Option<&str>| -> Result<usize, BcbpError> {
        let text = text.map_or_else(|| fail(item, "is missing"), Ok)?;
        usize::from_str_radix(text, 16).or_else(|_| fail(item, format!("{text:?} is not hexadecimal")))
    };
    if !conditional.starts_with('>') {
        return fail("conditional_items", "must start with >");
    }
    let unique_len = hex("unique_conditional_size", conditional.get(2..4))?;
    let repeated_at = 4 + unique_len;
    let repeated_len = hex("repeated_conditional_size", conditional.get(repeated_at..repeated_at + 2))?;
    let repeated = conditional.get(repeated_at + 2..repeated_at + 2 + repeated_len).unwrap_or_default();
    Ok(repeated.get(..13).map(str::to_owned).filter(|ticket| ticket.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// IATA Resolution 792, Attachment B, example 1: the mandatory items only.
    const MANDATORY_ONLY: &str = "M1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100";
    /// Attachment B, example 3: one leg with repeated conditional items (version 5) and security data.
    const WITH_TICKET: &str = "M1GRANDMAIRE/MELANIE  EABC123 GVACDGAF 0123 339C002F0025 130>5002A0571234567890  AF AF 1234567890123456    Y^18ABCDEFGH";
    /// Attachment B, example 2: unique conditional items (baggage tags) before the repeated ones.
    const ALL_ITEMS: &str = "M1DESMARAIS/LUC       EAB12C3 YULFRAAC 0834 326J003A0027 167>5321WW1325BAC 0014123456002001412346700100141234789012A0141234567890 1AC AC 1234567890123    4PCYLX58Z^108ABCDEFGH";

    fn luc() -> Bcbp {
        Bcbp {
            passenger_name: "DESMARAIS/LUC".into(),
            electronic_ticket: true,
            booking_reference: "ABC123".into(),
            from: "YUL".into(),
            to: "FRA".into(),
            carrier: "AC".into(),
            flight_number: 834,
            flight_suffix: None,
            day_of_year: 326,
            compartment: 'J',
            seat: "1A".into(),
            sequence_number: 25,
            passenger_status: '1',
            ticket_number: None,
        }
    }

    #[test]
    fn the_mandatory_items_are_written_as_the_published_example() {
        assert_eq!(luc().encode().unwrap(), MANDATORY_ONLY);
        assert_eq!(Bcbp::decode(MANDATORY_ONLY).unwrap(), luc());
    }

    #[test]
    fn a_published_pass_with_its_ticket_number_reads_field_by_field() {
        let read = Bcbp::decode(WITH_TICKET).unwrap();
        assert_eq!(read.passenger_name, "GRANDMAIRE/MELANIE");
        assert!(read.electronic_ticket);
        assert_eq!(read.booking_reference, "ABC123");
        assert_eq!((read.from.as_str(), read.to.as_str(), read.carrier.as_str()), ("GVA", "CDG", "AF"));
        assert_eq!((read.flight_number, read.flight_suffix, read.day_of_year), (123, None, 339));
        assert_eq!((read.compartment, read.seat.as_str(), read.sequence_number), ('C', "2F", 25));
        assert_eq!(read.passenger_status, '1');
        assert_eq!(read.ticket_number.as_deref(), Some("0571234567890"));

        // Written again: the same items, in this encoder's version, without the example's frequent flyer
        // number, fast track and security data.
        let written = read.encode().unwrap();
        assert_eq!(&written[..58], &WITH_TICKET[..58], "the mandatory items");
        assert_eq!(&written[58..], format!("30>6002A0571234567890  {:<27}", "AF"));
        assert_eq!(Bcbp::decode(&written).unwrap(), read);
    }

    #[test]
    fn unique_conditional_items_are_skipped_to_reach_the_ticket_number() {
        let read = Bcbp::decode(ALL_ITEMS).unwrap();
        assert_eq!((read.booking_reference.as_str(), read.seat.as_str(), read.sequence_number), ("AB12C3", "3A", 27));
        assert_eq!(read.ticket_number.as_deref(), Some("0141234567890"));
    }

    #[test]
    fn an_infant_a_suffix_and_three_digit_rows_are_written_and_read_back() {
        let pass =
            Bcbp { flight_suffix: Some('A'), seat: "INF".into(), ticket_number: Some("9990000000017".into()), ..luc() };
        let written = pass.encode().unwrap();
        assert_eq!(&written[39..52], "0834A326JINF ");
        assert_eq!(Bcbp::decode(&written).unwrap(), pass);
        let back_row = Bcbp { seat: "123K".into(), ..luc() };
        assert_eq!(&back_row.encode().unwrap()[48..52], "123K");
    }

    #[test]
    fn items_that_do_not_fit_are_named() {
        let item = |pass: Bcbp| pass.encode().unwrap_err().item;
        assert_eq!(item(Bcbp { passenger_name: "AVERYLONGFAMILYNAME/GIVEN".into(), ..luc() }), "passenger_name");
        assert_eq!(item(Bcbp { passenger_name: "ÖZ/AYŞE".into(), ..luc() }), "passenger_name");
        assert_eq!(item(Bcbp { from: "YU".into(), ..luc() }), "from");
        assert_eq!(item(Bcbp { flight_number: 10_000, ..luc() }), "flight_number");
        assert_eq!(item(Bcbp { seat: "A1".into(), ..luc() }), "seat");
        assert_eq!(item(Bcbp { sequence_number: 0, ..luc() }), "sequence_number");
        assert_eq!(item(Bcbp { ticket_number: Some("12345".into()), ..luc() }), "ticket_number");
        for broken in ["", "X1DESMARAIS/LUC       EABC123 YULFRAAC 0834 326J001A0025 100", &MANDATORY_ONLY[..59]] {
            assert!(Bcbp::decode(broken).is_err(), "{broken:?}");
        }
        let runs_over = format!("{}FF>6", &MANDATORY_ONLY[..58]);
        assert_eq!(Bcbp::decode(&runs_over).unwrap_err().item, "conditional_size");
    }
}
