//! `FlightService` conversions: searches, seat maps, new flights, and flights as the API shows them.

use super::*;

/// `GetSeatMapRequest`: the flight and, optionally, one cabin.
pub fn seat_map_query(request: &pb::GetSeatMapRequest) -> Result<(Uuid, Option<CabinClass>), ValidationError> {
    let mut v = Violations::new();
    let id = v.check("flight_id", uuid(&request.flight_id));
    let cabin = v.check("cabin", optional_cabin(request.cabin));
    v.finish_with(|| Some((id?, cabin?)))
}

fn status_to_proto(status: FlightStatus) -> pb::FlightStatus {
    match status {
        FlightStatus::Scheduled => pb::FlightStatus::Scheduled,
        FlightStatus::Delayed => pb::FlightStatus::Delayed,
        FlightStatus::Cancelled => pb::FlightStatus::Cancelled,
        FlightStatus::Departed => pb::FlightStatus::Departed,
        FlightStatus::Arrived => pb::FlightStatus::Arrived,
    }
}

pub fn cabins_to_proto(cabins: &[CabinAvailability]) -> Vec<pb::CabinAvailability> {
    cabins.iter().map(cabin_availability_to_proto).collect()
}

fn cabin_availability_to_proto(cabin: &CabinAvailability) -> pb::CabinAvailability {
    pb::CabinAvailability {
        cabin: cabin_to_proto(cabin.cabin).into(),
        seats_total: cabin.seats_total,
        seats_available: cabin.seats_available,
        price: Some(money_to_proto(cabin.price)),
    }
}

pub fn flight_to_proto(flight: &Flight) -> pb::Flight {
    pb::Flight {
        id: flight.id.to_string(),
        flight_number: flight.flight_number.as_str().to_owned(),
        origin: flight.origin.to_string(),
        destination: flight.destination.to_string(),
        departs_at: Some(timestamp(flight.departs_at)),
        arrives_at: Some(timestamp(flight.arrives_at)),
        status: status_to_proto(flight.status).into(),
        cabins: cabins_to_proto(&flight.cabins),
        origin_time_zone: flight.origin_time_zone.name().to_owned(),
        destination_time_zone: flight.destination_time_zone.name().to_owned(),
    }
}

pub fn flight_page_to_proto(page: &FlightPage) -> pb::SearchFlightsResponse {
    pb::SearchFlightsResponse {
        flights: page.flights.iter().map(flight_to_proto).collect(),
        next_page_token: page.next_page_token.clone().unwrap_or_default(),
    }
}

pub fn seat_map_to_proto(flight: &Flight, seats: &[SeatState]) -> pb::SeatMap {
    pb::SeatMap {
        flight_id: flight.id.to_string(),
        seats: seats
            .iter()
            .map(|s| pb::Seat {
                seat_number: s.seat.to_string(),
                cabin: cabin_to_proto(s.cabin).into(),
                available: s.available,
            })
            .collect(),
    }
}

/// `today` is the server's current UTC date, against which the departure date is bounded.
pub fn flight_search(request: pb::SearchFlightsRequest, today: NaiveDate) -> Result<FlightSearch, ValidationError> {
    let mut v = Violations::new();
    let leg = route_and_date(&mut v, "", (&request.origin, &request.destination, &request.departure_date), today);
    let passengers = v.check("passengers", search::passengers(request.passengers));
    let cabin = v.check("cabin", optional_cabin(request.cabin));
    let page_size = v.check("page_size", page_size(request.page_size));
    let after = v.check("page_token", Cursor::decode(&request.page_token));
    v.finish_with(|| {
        let (route, departure_date) = leg?;
        Some(FlightSearch {
            route,
            departure_date,
            passengers: passengers?,
            cabin: cabin?,
            page_size: page_size?,
            after: after?,
        })
    })
}

/// `SearchTripsRequest`: a search per leg, each for the first page, with the trip's party and cabin.
pub fn trip_search(request: pb::SearchTripsRequest, today: NaiveDate) -> Result<Vec<FlightSearch>, ValidationError> {
    let mut v = Violations::new();
    if !(1..=MAX_TRIP_LEGS).contains(&request.legs.len()) {
        v.add("legs", format!("must list 1 to {MAX_TRIP_LEGS} legs"));
    }
    let passengers = v.check("passengers", search::passengers(request.passengers));
    let cabin = v.check("cabin", optional_cabin(request.cabin));
    // Over the limit, no leg is read: the request is refused anyway.
    let listed = if request.legs.len() > MAX_TRIP_LEGS { &[][..] } else { &request.legs[..] };
    let legs: Vec<_> = listed
        .iter()
        .enumerate()
        .map(|(i, leg)| {
            let fields = (leg.origin.as_str(), leg.destination.as_str(), leg.departure_date.as_str());
            route_and_date(&mut v, &format!("legs[{i}]."), fields, today)
        })
        .collect();
    v.finish_with(|| {
        legs.into_iter()
            .map(|leg| {
                let (route, departure_date) = leg?;
                Some(FlightSearch {
                    route,
                    departure_date,
                    passengers: passengers?,
                    cabin: cabin?,
                    page_size: DEFAULT_PAGE_SIZE,
                    after: None,
                })
            })
            .collect()
    })
}

/// A search's route and date, its violations named with `prefix` (`""`, or `legs[i].`).
fn route_and_date(
    v: &mut Violations,
    prefix: &str,
    (origin, destination, departure_date): (&str, &str, &str),
    today: NaiveDate,
) -> Option<(Route, NaiveDate)> {
    let origin = v.check(format!("{prefix}origin"), AirportCode::parse(origin));
    let destination = v.check(format!("{prefix}destination"), AirportCode::parse(destination));
    if let (Some(o), Some(d)) = (origin, destination)
        && o == d
    {
        v.add(format!("{prefix}destination"), "must differ from origin");
    }
    let departure_date = v.check(format!("{prefix}departure_date"), search::departure_date(departure_date, today));
    Some((Route { origin: origin?, destination: destination? }, departure_date?))
}

pub fn new_flight(request: pb::CreateFlightRequest, now: DateTime<Utc>) -> Result<NewFlight, ValidationError> {
    let mut v = Violations::new();
    let mut cabins = Vec::new();
    // Over the limit, no cabin is parsed and `NewFlight::assemble` reports the count: thousands of cabins
    // would be work (and violations) spent on a request that is rejected anyway.
    let listed = if request.cabins.len() > MAX_CABINS { &[][..] } else { &request.cabins[..] };
    for (i, config) in listed.iter().enumerate() {
        let class = v.check(format!("cabins[{i}].cabin"), cabin(config.cabin));
        let layout = CabinLayout::new(config.first_row, config.rows, &config.seat_letters)
            .map_err(|(field, e)| v.add(format!("cabins[{i}].{field}"), e))
            .ok();
        let price = match &config.price {
            None => {
                v.add(format!("cabins[{i}].price"), "is required");
                None
            }
            Some(price) => Money::seat_price(&price.currency_code, price.amount_minor)
                .map_err(|(field, e)| v.add(format!("cabins[{i}].price.{field}"), e))
                .ok(),
        };
        let change_fee = change_fee(config.change_fee.as_ref(), price, &format!("cabins[{i}].change_fee"), &mut v);
        cabins.push(match (class, layout, price, change_fee) {
            (Some(cabin), Some(layout), Some(price), Some(change_fee_minor)) => {
                Some(CabinConfig { cabin, layout, price, change_fee_minor })
            }
            _ => None,
        });
    }
    let parts = NewFlightParts {
        flight_number: v.check("flight_number", FlightNumber::parse(&request.flight_number)),
        origin: v.check("origin", AirportCode::parse(&request.origin)),
        destination: v.check("destination", AirportCode::parse(&request.destination)),
        departs_at: v.check("departs_at", parse_timestamp(request.departs_at.as_ref())),
        arrives_at: v.check("arrives_at", parse_timestamp(request.arrives_at.as_ref())),
        cabins,
    };
    NewFlight::assemble(parts, v, now)
}

/// A cabin's change fee under `field`: unset is none; otherwise in the price's currency, 0 up to the largest
/// seat price.
fn change_fee(fee: Option<&pb::Money>, price: Option<Money>, field: &str, v: &mut Violations) -> Option<i64> {
    let Some(fee) = fee else { return Some(0) };
    if let Some(price) = price
        && fee.currency_code != price.currency.as_str()
    {
        v.add(format!("{field}.currency_code"), format!("must be the price's currency, {}", price.currency.as_str()));
        return None;
    }
    if !(0..=MAX_SEAT_PRICE_MINOR).contains(&fee.amount_minor) {
        v.add(format!("{field}.amount_minor"), format!("must be between 0 and {MAX_SEAT_PRICE_MINOR}"));
        return None;
    }
    Some(fee.amount_minor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(error: ValidationError) -> Vec<String> {
        error.violations.into_iter().map(|v| v.field).collect()
    }

    #[test]
    fn a_search_reports_every_bad_field() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 21).unwrap();
        let request = pb::SearchFlightsRequest {
            origin: "ruh".into(),
            destination: "JEDD".into(),
            departure_date: "tomorrow".into(),
            passengers: 0,
            cabin: 99,
            page_size: 101,
            page_token: "nope".into(),
        };
        assert_eq!(
            fields(flight_search(request, today).unwrap_err()),
            ["origin", "destination", "departure_date", "passengers", "cabin", "page_size", "page_token"]
        );
        let any_cabin = pb::SearchFlightsRequest {
            origin: "RUH".into(),
            destination: "JED".into(),
            departure_date: "2026-11-22".into(),
            passengers: 2,
            ..Default::default()
        };
        assert_eq!(flight_search(any_cabin, today).unwrap().cabin, None, "unspecified means any cabin");
    }

    #[test]
    fn create_flight_paths_name_nested_fields() {
        let request = pb::CreateFlightRequest {
            flight_number: "AB1".into(),
            origin: "RUH".into(),
            destination: "JED".into(),
            departs_at: None,
            arrives_at: Some(prost_types::Timestamp { seconds: 0, nanos: -1 }),
            cabins: vec![pb::CabinConfig {
                cabin: 1,
                first_row: 0,
                rows: 1,
                seat_letters: "AB".into(),
                price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: -5 }),
                change_fee: Some(pb::Money { currency_code: "SAR".into(), amount_minor: -1 }),
            }],
        };
        assert_eq!(
            fields(new_flight(request, Utc::now()).unwrap_err()),
            [
                "cabins[0].first_row",
                "cabins[0].price.amount_minor",
                "cabins[0].change_fee.amount_minor",
                "departs_at",
                "arrives_at"
            ]
        );
    }

    #[test]
    fn too_many_cabins_are_reported_once_without_parsing_them() {
        let cabin = pb::CabinConfig { first_row: -1, ..Default::default() };
        let request = pb::CreateFlightRequest {
            flight_number: "AB1".into(),
            origin: "RUH".into(),
            destination: "JED".into(),
            departs_at: Some(timestamp(Utc::now() + chrono::Duration::days(1))),
            arrives_at: Some(timestamp(Utc::now() + chrono::Duration::days(1) + chrono::Duration::hours(1))),
            cabins: vec![cabin; 10_000],
        };
        assert_eq!(fields(new_flight(request, Utc::now()).unwrap_err()), ["cabins"]);
    }

    #[test]
    fn schedule_times_are_kept_to_the_second() {
        let at = prost_types::Timestamp { seconds: 1_900_000_000, nanos: 123_456_789 };
        assert_eq!(parse_timestamp(Some(&at)).unwrap().timestamp_subsec_nanos(), 0);
        assert!(parse_timestamp(Some(&prost_types::Timestamp { seconds: 0, nanos: 1_000_000_000 })).is_err());
        assert!(parse_timestamp(None).is_err());
    }
}
