//! Online check-in and boarding: when check-in is open, what a boarding pass says, and whether a scanned
//! pass belongs to the flight being boarded. The pass's barcode string is the contract's own encoder
//! (`aerobook_proto::bcbp`), a pure module beside the proto, so the server writes exactly what the SDK reads.

use aerobook_proto::bcbp::{Bcbp, BcbpError};
use chrono::{DateTime, Datelike as _, TimeDelta, Utc};
use uuid::Uuid;

use super::{
    booking::{Booking, Passenger, PassengerType, Refusal},
    flight::{CabinClass, Flight, SeatNumber},
    ticket::{Ticket, TicketStatus},
};

/// Online check-in closes this long before departure.
pub const CLOSES_BEFORE_DEPARTURE: TimeDelta = TimeDelta::minutes(60);
/// Boarding starts this long before departure.
pub const BOARDING_BEFORE_DEPARTURE: TimeDelta = TimeDelta::minutes(45);
/// Manifest pages: a whole cabin at a time.
pub const MANIFEST_DEFAULT_PAGE_SIZE: u32 = 100;
pub const MANIFEST_MAX_PAGE_SIZE: u32 = 500;
/// Longest name a pass carries (Resolution 792's name item).
const PASS_NAME_CHARS: usize = 20;

/// Refuses check-in outside its window: from `opens_before` departure until [`CLOSES_BEFORE_DEPARTURE`].
pub fn check_window(departs_at: DateTime<Utc>, opens_before: TimeDelta, now: DateTime<Utc>) -> Result<(), Refusal> {
    let opens_at = departs_at - opens_before;
    if now < opens_at {
        Err(Refusal::CheckInNotOpen { opens_at })
    } else if now >= departs_at - CLOSES_BEFORE_DEPARTURE {
        Err(Refusal::CheckInClosed)
    } else {
        Ok(())
    }
}

/// One passenger's boarding pass for one flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoardingPass {
    pub ticket_number: String,
    pub passenger_name: String,
    pub flight_id: Uuid,
    pub flight_number: String,
    pub origin: String,
    pub destination: String,
    pub departs_at: DateTime<Utc>,
    pub seat: SeatNumber,
    pub cabin: CabinClass,
    pub sequence_number: u16,
    pub boarding_time: DateTime<Utc>,
    /// The IATA Resolution 792 string the barcode carries.
    pub bcbp: String,
}

/// Why a pass cannot be made for a ticket: the booking as stored does not hold what the pass needs.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    #[error("ticket {0} is not checked in")]
    NotCheckedIn(String),
    #[error("the booking has no seat for passenger {0} on its flight")]
    NoSeat(usize),
    #[error("the pass cannot be encoded: {0}")]
    Encoding(#[from] BcbpError),
}

impl BoardingPass {
    /// The pass for a checked-in `ticket` of `booking` on `flight`.
    pub fn of(booking: &Booking, flight: &Flight, ticket: &Ticket) -> Result<Self, PassError> {
        let sequence_number =
            ticket.sequence_number.ok_or_else(|| PassError::NotCheckedIn(ticket.ticket_number.clone()))?;
        let (passenger, segment) = booking
            .passengers
            .get(ticket.passenger_index)
            .zip(booking.segments.iter().find(|segment| segment.flight_id == flight.id))
            .ok_or(PassError::NoSeat(ticket.passenger_index))?;
        let seat = *segment.seats.get(ticket.passenger_index).ok_or(PassError::NoSeat(ticket.passenger_index))?;
        let (carrier, flight_number, flight_suffix) = flight_parts(flight.flight_number.as_str());
        let bcbp = Bcbp {
            passenger_name: pass_name(passenger),
            electronic_ticket: true,
            booking_reference: booking.reference.as_str().to_owned(),
            from: flight.origin.as_str().to_owned(),
            to: flight.destination.as_str().to_owned(),
            carrier: carrier.to_owned(),
            flight_number,
            flight_suffix,
            day_of_year: day_of_year(flight),
            compartment: compartment(segment.cabin),
            seat: seat.to_string(),
            sequence_number,
            passenger_status: '1',
            ticket_number: Some(ticket.ticket_number.clone()),
        }
        .encode()?;
        Ok(Self {
            ticket_number: ticket.ticket_number.clone(),
            passenger_name: format!("{} {}", passenger.given_name, passenger.family_name),
            flight_id: flight.id,
            flight_number: flight.flight_number.as_str().to_owned(),
            origin: flight.origin.as_str().to_owned(),
            destination: flight.destination.as_str().to_owned(),
            departs_at: flight.departs_at,
            seat,
            cabin: segment.cabin,
            sequence_number,
            boarding_time: flight.departs_at - BOARDING_BEFORE_DEPARTURE,
            bcbp,
        })
    }
}

/// One passenger of a flight, as departure control sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestEntry {
    pub booking_id: Uuid,
    pub booking_reference: String,
    pub passenger_index: usize,
    pub passenger_name: String,
    pub passenger_type: PassengerType,
    pub seat: SeatNumber,
    pub cabin: CabinClass,
    pub ticket_number: String,
    pub checked_in: bool,
    pub boarded: bool,
    pub documents_present: bool,
    pub sequence_number: Option<u16>,
}

impl ManifestEntry {
    /// The entry of `ticket`, a ticket of `booking`; `None` when the booking holds no seat for it (its
    /// flight is not one of the booking's).
    pub fn of(booking: &Booking, ticket: &Ticket) -> Option<Self> {
        let passenger = booking.passengers.get(ticket.passenger_index)?;
        let segment = booking.segments.iter().find(|segment| segment.flight_id == ticket.flight_id)?;
        Some(Self {
            booking_id: booking.id,
            booking_reference: booking.reference.as_str().to_owned(),
            passenger_index: ticket.passenger_index,
            passenger_name: format!("{} {}", passenger.given_name, passenger.family_name),
            passenger_type: passenger.passenger_type,
            seat: *segment.seats.get(ticket.passenger_index)?,
            cabin: segment.cabin,
            ticket_number: ticket.ticket_number.clone(),
            checked_in: matches!(ticket.status, TicketStatus::CheckedIn | TicketStatus::Boarded),
            boarded: ticket.status == TicketStatus::Boarded,
            documents_present: booking.documents.contains_key(&ticket.passenger_index),
            sequence_number: ticket.sequence_number,
        })
    }
}

/// Whether a scanned pass was made for `flight`: its carrier, number, airports and date. The reason when
/// not, for the agent at the gate.
pub fn check_scan_is_for(pass: &Bcbp, flight: &Flight) -> Result<(), String> {
    let (carrier, number, suffix) = flight_parts(flight.flight_number.as_str());
    let same_flight = pass.carrier == carrier && pass.flight_number == number && pass.flight_suffix == suffix;
    let same_day = pass.day_of_year == day_of_year(flight);
    if same_flight && same_day && pass.from == flight.origin.as_str() && pass.to == flight.destination.as_str() {
        Ok(())
    } else {
        Err(format!(
            "this pass is for {}{:04} {}-{} on day {}, not for {} {}-{} on day {}",
            pass.carrier,
            pass.flight_number,
            pass.from,
            pass.to,
            pass.day_of_year,
            flight.flight_number.as_str(),
            flight.origin.as_str(),
            flight.destination.as_str(),
            day_of_year(flight)
        ))
    }
}

/// The compartment code a pass carries for a cabin.
pub fn compartment(cabin: CabinClass) -> char {
    match cabin {
        CabinClass::First => 'F',
        CabinClass::Business => 'C',
        CabinClass::PremiumEconomy => 'W',
        CabinClass::Economy => 'Y',
    }
}

/// The flight's date as a pass writes it: the day of the year of its local departure date.
fn day_of_year(flight: &Flight) -> u16 {
    u16::try_from(flight.departure_date.ordinal()).unwrap_or(0)
}

/// `AB101C` as (carrier `AB`, number 101, suffix `C`). A flight number is a two-character designator,
/// 1..=4 digits and an optional letter (checked when the flight was created).
fn flight_parts(flight_number: &str) -> (&str, u16, Option<char>) {
    let (carrier, rest) = flight_number.split_at(2.min(flight_number.len()));
    let digits = rest.trim_end_matches(|c: char| c.is_ascii_uppercase());
    (carrier, digits.parse().unwrap_or(0), rest[digits.len()..].chars().next())
}

/// `SURNAME/GIVEN` in the pass's alphabet (Latin capitals, space, hyphen), at most 20 characters. Letters
/// with diacritics lose them; letters of other scripts cannot be written and are left out.
pub fn pass_name(passenger: &Passenger) -> String {
    let surname = latin_capitals(&passenger.family_name);
    let given = latin_capitals(&passenger.given_name);
    let surname = if surname.is_empty() { "PASSENGER".to_owned() } else { surname };
    let mut name = format!("{surname}/{given}");
    name.truncate(PASS_NAME_CHARS);
    name.trim_end().to_owned()
}

fn latin_capitals(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_uppercase) {
        match c {
            'A'..='Z' => out.push(c),
            ' ' | '-' | '\'' | '.' => {
                if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('-') {
                    out.push(if c == '-' { '-' } else { ' ' });
                }
            }
            other => out.push_str(without_diacritics(other)),
        }
    }
    out.trim_end_matches([' ', '-']).to_owned()
}

/// The Latin letters a capital with a diacritic (or a ligature) is written with on a pass; empty for
/// letters outside the Latin script.
fn without_diacritics(c: char) -> &'static str {
    match c {
        'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' | 'Ā' | 'Ă' | 'Ą' => "A",
        'Æ' => "AE",
        'Ç' | 'Ć' | 'Č' => "C",
        'Ď' | 'Đ' | 'Ð' => "D",
        'È' | 'É' | 'Ê' | 'Ë' | 'Ē' | 'Ė' | 'Ę' | 'Ě' => "E",
        'Ğ' => "G",
        'Ì' | 'Í' | 'Î' | 'Ï' | 'Ī' | 'İ' => "I",
        'Ł' => "L",
        'Ñ' | 'Ń' | 'Ň' => "N",
        'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' | 'Ō' | 'Ő' => "O",
        'Œ' => "OE",
        'Ř' => "R",
        'Ś' | 'Š' | 'Ş' => "S",
        'ẞ' => "SS",
        'Ť' | 'Ţ' => "T",
        'Ù' | 'Ú' | 'Û' | 'Ü' | 'Ū' | 'Ů' | 'Ű' => "U",
        'Ý' | 'Ÿ' => "Y",
        'Ź' | 'Ż' | 'Ž' => "Z",
        'Þ' => "TH",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn passenger(given: &str, family: &str) -> Passenger {
        Passenger {
            given_name: given.into(),
            family_name: family.into(),
            date_of_birth: chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap(),
            passenger_type: PassengerType::Adult,
        }
    }

    #[test]
    fn check_in_opens_and_closes_on_time() {
        let departs = "2027-03-01T12:00:00Z".parse::<DateTime<Utc>>().unwrap();
        let opens = TimeDelta::hours(24);
        let at = |text: &str| text.parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            check_window(departs, opens, at("2027-02-28T11:59:59Z")),
            Err(Refusal::CheckInNotOpen { opens_at: at("2027-02-28T12:00:00Z") })
        );
        assert_eq!(check_window(departs, opens, at("2027-02-28T12:00:00Z")), Ok(()));
        assert_eq!(check_window(departs, opens, at("2027-03-01T10:59:59Z")), Ok(()));
        assert_eq!(check_window(departs, opens, at("2027-03-01T11:00:00Z")), Err(Refusal::CheckInClosed));
    }

    #[test]
    fn names_are_written_in_the_pass_alphabet() {
        assert_eq!(pass_name(&passenger("Sara", "Haddad")), "HADDAD/SARA");
        assert_eq!(pass_name(&passenger("José María", "Núñez-Ñandú")), "NUNEZ-NANDU/JOSE MAR");
        assert_eq!(pass_name(&passenger("Zoë", "O'Brien")), "O BRIEN/ZOE");
        assert_eq!(pass_name(&passenger("Łukasz", "Żółw")), "ZOLW/LUKASZ");
        assert_eq!(pass_name(&passenger("سارة", "حداد")), "PASSENGER/");
    }

    #[test]
    fn flight_numbers_split_into_carrier_number_and_suffix() {
        assert_eq!(flight_parts("AB101"), ("AB", 101, None));
        assert_eq!(flight_parts("X91234C"), ("X9", 1234, Some('C')));
    }
}
