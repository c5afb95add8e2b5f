//! Travel documents: the passport or identity card a passenger gives at check-in for a flight between two
//! countries. They are personal data: their `Debug` shows no more than the document's type, and no
//! violation message repeats what the caller typed, so neither a log line nor a trace can carry them.

use std::fmt;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};

use super::{airport::CountryCode, validation::Violations};

/// Documents are kept this long after the last flight of their booking lands, then swept.
const KEPT_AFTER_THE_TRIP: TimeDelta = TimeDelta::days(1);

/// Until when a booking's documents are kept, its last flight landing at `last_arrival`.
pub fn kept_until(last_arrival: DateTime<Utc>) -> DateTime<Utc> {
    last_arrival + KEPT_AFTER_THE_TRIP
}

string_enum!(
    /// The kinds of document accepted for travel between countries.
    DocumentType { Passport => "PASSPORT", NationalId => "NATIONAL_ID" }
);

impl DocumentType {
    /// The lengths a number of this kind may have: ICAO Doc 9303 leaves 9 characters for a passport number;
    /// identity cards vary more by country.
    fn number_lengths(self) -> std::ops::RangeInclusive<usize> {
        match self {
            DocumentType::Passport => 6..=9,
            DocumentType::NationalId => 5..=20,
        }
    }
}

/// A checked travel document.
#[derive(Clone, PartialEq, Eq)]
pub struct TravelDocument {
    pub kind: DocumentType,
    pub number: String,
    pub issuing_country: CountryCode,
    pub nationality: CountryCode,
    pub expires_on: NaiveDate,
}

impl fmt::Debug for TravelDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TravelDocument").field("kind", &self.kind).finish_non_exhaustive()
    }
}

/// A document as the caller gave it, before it is checked.
#[derive(Clone, Default)]
pub struct DocumentFields {
    /// `None`: the type was left unspecified.
    pub kind: Option<DocumentType>,
    pub number: String,
    pub issuing_country: String,
    pub nationality: String,
    pub expires_on: String,
}

impl fmt::Debug for DocumentFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DocumentFields").field("kind", &self.kind).finish_non_exhaustive()
    }
}

impl DocumentFields {
    /// Checks every field, naming each fault under `path` (e.g. `documents[0]`): a number of the type's
    /// shape, ISO 3166-1 countries, and an expiry no earlier than `needed_until` (the flight's arrival).
    pub fn check(&self, path: &str, needed_until: NaiveDate, v: &mut Violations) -> Option<TravelDocument> {
        let field = |name: &str| format!("{path}.{name}");
        let kind = v.check(field("type"), self.kind.ok_or_else(|| "must be PASSPORT or NATIONAL_ID".to_owned()));
        let number = match kind {
            Some(kind) => v.check(field("number"), document_number(kind, &self.number)),
            None => None,
        };
        let issuing_country = v.check(field("issuing_country"), country(&self.issuing_country));
        let nationality = v.check(field("nationality"), country(&self.nationality));
        let expires_on = v.check(
            field("expires_on"),
            NaiveDate::parse_from_str(&self.expires_on, "%Y-%m-%d")
                .map_err(|_| "must be a date, YYYY-MM-DD".to_owned())
                .and_then(|date| {
                    if date < needed_until {
                        Err(format!("the document expires before the flight arrives on {needed_until}"))
                    } else {
                        Ok(date)
                    }
                }),
        );
        Some(TravelDocument {
            kind: kind?,
            number: number?,
            issuing_country: issuing_country?,
            nationality: nationality?,
            expires_on: expires_on?,
        })
    }
}

fn document_number(kind: DocumentType, number: &str) -> Result<String, String> {
    let lengths = kind.number_lengths();
    let shaped = number.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        && number.bytes().any(|b| b.is_ascii_digit())
        && lengths.contains(&number.len());
    if shaped {
        Ok(number.to_owned())
    } else {
        Err(format!(
            "must be {} to {} capital letters and digits, with at least one digit",
            lengths.start(),
            lengths.end()
        ))
    }
}

/// An officially assigned ISO 3166-1 alpha-2 code.
pub fn country(code: &str) -> Result<CountryCode, String> {
    let parsed = CountryCode::parse(code)?;
    if ISO_3166_ALPHA_2.split(' ').any(|assigned| assigned == code) {
        Ok(parsed)
    } else {
        Err("is not an assigned ISO 3166-1 country code".into())
    }
}

/// The 249 officially assigned ISO 3166-1 alpha-2 codes.
const ISO_3166_ALPHA_2: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET \
FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ \
OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW \
SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ \
UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

#[cfg(test)]
mod tests {
    use super::*;

    fn fields() -> DocumentFields {
        DocumentFields {
            kind: Some(DocumentType::Passport),
            number: "X1234567".into(),
            issuing_country: "SA".into(),
            nationality: "SA".into(),
            expires_on: "2030-01-31".into(),
        }
    }

    fn check(fields: &DocumentFields) -> (Option<TravelDocument>, Vec<String>) {
        let mut v = Violations::new();
        let document = fields.check("documents[1]", NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(), &mut v);
        let names = match v.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.violations.into_iter().map(|violation| violation.field).collect(),
        };
        (document, names)
    }

    #[test]
    fn the_list_holds_every_assigned_code_once() {
        let codes: Vec<&str> = ISO_3166_ALPHA_2.split(' ').collect();
        assert_eq!(codes.len(), 249);
        assert!(codes.windows(2).all(|pair| pair[0] < pair[1]), "sorted, no repeats");
        assert!(country("SA").is_ok() && country("GB").is_ok());
        for unassigned in ["XX", "UK", "EU", "sa", "SAU", ""] {
            assert!(country(unassigned).is_err(), "{unassigned:?}");
        }
    }

    #[test]
    fn a_valid_document_passes_and_each_fault_is_named() {
        let (document, faults) = check(&fields());
        assert!(faults.is_empty());
        assert_eq!(document.unwrap().number, "X1234567");

        let wrong = DocumentFields {
            kind: None,
            number: "X1".into(),
            issuing_country: "XX".into(),
            nationality: "".into(),
            expires_on: "2027-02-28".into(),
        };
        assert_eq!(
            check(&wrong).1,
            [
                "documents[1].type",
                "documents[1].issuing_country",
                "documents[1].nationality",
                "documents[1].expires_on"
            ]
        );
    }

    #[test]
    fn numbers_have_the_shape_of_their_type() {
        for (kind, number, ok) in [
            (DocumentType::Passport, "A12345", true),
            (DocumentType::Passport, "A1234567890", false),
            (DocumentType::Passport, "ABCDEFG", false),
            (DocumentType::Passport, "a1234567", false),
            (DocumentType::Passport, "A-123456", false),
            (DocumentType::NationalId, "1098765432", true),
            (DocumentType::NationalId, "1234", false),
        ] {
            let (_, faults) = check(&DocumentFields { kind: Some(kind), number: number.into(), ..fields() });
            assert_eq!(faults.is_empty(), ok, "{kind:?} {number}");
        }
    }

    #[test]
    fn a_document_valid_on_the_arrival_day_is_enough() {
        let (_, faults) = check(&DocumentFields { expires_on: "2027-03-01".into(), ..fields() });
        assert!(faults.is_empty());
    }

    #[test]
    fn debug_output_carries_no_personal_data() {
        let (document, _) = check(&fields());
        let shown = format!("{:?} {:?}", document.unwrap(), fields());
        assert!(!shown.contains("X1234567") && !shown.contains("2030"), "{shown}");
    }
}
