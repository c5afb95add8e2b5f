//! Airports as reference data: every database has the world's IATA airports from its migrations, so a
//! fresh production database sells flights without demo data; operators keep them current.

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, Role, TestApp, backend_tests, create_flight_request, idempotency_key, request};
use tonic::Code;

use crate::bookings::{Customer, adult, hold};

fn airport(code: &str, time_zone: &str) -> pb::Airport {
    pb::Airport {
        code: code.into(),
        name: "Test Field".into(),
        city: "Testville".into(),
        country_code: "JP".into(),
        time_zone: time_zone.into(),
    }
}

async fn upsert(
    app: &TestApp,
    bearer: &str,
    airport: pb::Airport,
    key: &str,
) -> Result<tonic::Response<pb::Airport>, tonic::Status> {
    let upsert = pb::UpsertAirportRequest { airport: Some(airport) };
    app.airports().upsert_airport(request(upsert, &[("authorization", bearer), ("idempotency-key", key)])).await
}

async fn create_flight(app: &TestApp, flight: pb::CreateFlightRequest) -> Result<pb::Flight, tonic::Status> {
    let operator = app.bearer(Role::Operator);
    let headers = [("authorization", operator.as_str()), ("idempotency-key", &idempotency_key())];
    app.flights().create_flight(request(flight, &headers)).await.map(tonic::Response::into_inner)
}

backend_tests! {
    /// The migration's airports are there, listed by code, searchable by code, city or name, one page at
    /// a time; anyone may read them.
    async fn the_worlds_airports_are_listed_and_searchable(app: TestApp) {
        let narita = app.airports().get_airport(pb::GetAirportRequest { code: "NRT".into() }).await.expect("NRT").into_inner();
        assert_eq!((narita.country_code.as_str(), narita.time_zone.as_str()), ("JP", "Asia/Tokyo"));
        let list = |query: &str, page_size: i32, page_token: String| {
            let request = pb::ListAirportsRequest { query: query.into(), page_size, page_token };
            let mut client = app.airports();
            async move { client.list_airports(request).await }
        };
        let tokyo = list("tokyo", 100, String::new()).await.expect("search").into_inner();
        let codes: Vec<&str> = tokyo.airports.iter().map(|a| a.code.as_str()).collect();
        assert!(codes.contains(&"NRT") && codes.contains(&"HND"), "{codes:?}");
        assert!(codes.windows(2).all(|w| w[0] < w[1]), "by code");
        let by_code = list("nrt", 100, String::new()).await.unwrap().into_inner().airports;
        assert!(by_code.iter().any(|a| a.code == "NRT"), "codes match too (Narita's name and city do not contain nrt)");
        assert!(list("50%_off", 10, String::new()).await.unwrap().into_inner().airports.is_empty(), "wildcards are literal");

        let first = list("", 100, String::new()).await.unwrap().into_inner();
        assert_eq!(first.airports.len(), 100);
        let second = list("", 100, first.next_page_token.clone()).await.unwrap().into_inner();
        assert!(second.airports[0].code > first.airports[99].code, "the next page starts after the last code");

        let bad = list(&"x".repeat(65), 101, "garbage".into()).await.unwrap_err();
        ContractError::from_status(&bad).assert_validation(&["query", "page_size", "page_token"]);
        let missing = app.airports().get_airport(pb::GetAirportRequest { code: "QQX".into() }).await.unwrap_err();
        assert_eq!(ContractError::from_status(&missing).code, Code::NotFound);
        let malformed = app.airports().get_airport(pb::GetAirportRequest { code: "nrt".into() }).await.unwrap_err();
        ContractError::from_status(&malformed).assert_validation(&["code"]);
    }

    /// Operators add airports (keyed, replayed on retry); the time zone must be an IANA name; customers may
    /// not. A new airport can be flown to at once.
    async fn operators_upsert_airports(app: TestApp) {
        let operator = app.bearer(Role::Operator);
        let invalid = pb::Airport { code: "qqx".into(), name: String::new(), city: "x".into(), country_code: "JPN".into(), time_zone: "Mars/Olympus".into() };
        let refused = upsert(&app, &operator, invalid, &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&refused).assert_validation(&["airport.code", "airport.name", "airport.country_code", "airport.time_zone"]);
        let empty = pb::UpsertAirportRequest { airport: None };
        let headers = [("authorization", operator.as_str()), ("idempotency-key", &idempotency_key())];
        let refused = app.airports().upsert_airport(request(empty, &headers)).await.unwrap_err();
        ContractError::from_status(&refused).assert_validation(&["airport"]);
        let customer = app.bearer(Role::Customer);
        let forbidden = upsert(&app, &customer, airport("QQX", "Asia/Tokyo"), &idempotency_key()).await.unwrap_err();
        assert_eq!(ContractError::from_status(&forbidden).reason, "FORBIDDEN");

        let mut flight = create_flight_request("QQ1", "QQX", "SIN", 2);
        let unknown = create_flight(&app, flight.clone()).await.unwrap_err();
        ContractError::from_status(&unknown).assert_validation(&["origin"]);

        let key = idempotency_key();
        let added = upsert(&app, &operator, airport("QQX", "Asia/Tokyo"), &key).await.expect("added");
        let again = upsert(&app, &operator, airport("QQX", "Asia/Tokyo"), &key).await.expect("replayed");
        assert_eq!(again.metadata().get("idempotent-replayed").map(|v| v.to_str().unwrap()), Some("true"));
        assert_eq!(again.into_inner(), added.into_inner());
        flight.cabins.truncate(1);
        let created = create_flight(&app, flight).await.expect("a flight from the new airport");
        assert_eq!(created.origin_time_zone, "Asia/Tokyo");
    }

    /// A careless client's 70,000-character time zone: the error names the field and quotes a short,
    /// escaped prefix, so its details reach the client (they used to pass its 16 KiB metadata limit).
    async fn an_error_quotes_a_huge_value_only_in_part(app: TestApp) {
        let operator = app.bearer(Role::Operator);
        let huge = format!("Asia/\u{1b}{}", "x".repeat(70_000));
        let refused = upsert(&app, &operator, airport("QQY", &huge), &idempotency_key()).await.unwrap_err();
        let error = ContractError::from_status(&refused);
        error.assert_validation(&["airport.time_zone"]);
        let details = tonic_types::StatusExt::get_error_details(&refused);
        let description = &details.bad_request().expect("BadRequest").field_violations[0].description;
        assert!(description.starts_with("\"Asia/\\u{1b}xxx"), "{description}");
        assert!(description.contains("(70006 characters)") && description.len() < 200, "{description}");
    }

    /// A corrected time zone moves the local departure date (by which flights are searched) of flights
    /// already scheduled from that airport.
    async fn a_new_time_zone_moves_local_departure_dates(app: TestApp) {
        let operator = app.bearer(Role::Operator);
        upsert(&app, &operator, airport("QQY", "UTC"), &idempotency_key()).await.expect("added");
        // 23:30 UTC: the same instant is the next day at UTC+9.
        let mut flight = create_flight_request("QQ2", "QQY", "NRT", 3);
        let departs = flight.departs_at.as_mut().unwrap();
        departs.seconds = departs.seconds - departs.seconds % 86_400 + 23 * 3600 + 30 * 60;
        flight.arrives_at = Some(prost_types::Timestamp { seconds: departs.seconds + 3600, nanos: 0 });
        let created = create_flight(&app, flight).await.expect("created");
        let utc_date = chrono::DateTime::from_timestamp(created.departs_at.unwrap().seconds, 0).unwrap().date_naive();
        let search = |date: chrono::NaiveDate| pb::SearchFlightsRequest {
            origin: "QQY".into(),
            destination: "NRT".into(),
            departure_date: date.to_string(),
            passengers: 1,
            ..Default::default()
        };
        assert_eq!(app.flights().search_flights(search(utc_date)).await.unwrap().into_inner().flights.len(), 1);
        upsert(&app, &operator, airport("QQY", "Asia/Tokyo"), &idempotency_key()).await.expect("moved");
        let next_day = utc_date.succ_opt().unwrap();
        let found = app.flights().search_flights(search(next_day)).await.unwrap().into_inner().flights;
        assert_eq!(found.len(), 1, "found on its new local date");
        assert_eq!(found[0].origin_time_zone, "Asia/Tokyo");
        assert!(app.flights().search_flights(search(utc_date)).await.unwrap().into_inner().flights.is_empty(), "the cached old date was dropped");
    }

    /// A fresh database without demo data sells a flight between two airports it only knows from its
    /// migrations: create NRT -> SIN, search, hold, pay, confirmed.
    async fn a_fresh_database_without_demo_data_sells_a_flight(app: TestApp, settings = [("AEROBOOK_SEED_DEMO_DATA", "false")]) {
        let none = pb::SearchFlightsRequest { origin: "RUH".into(), destination: "JED".into(), departure_date: aerobook_tests::riyadh_date(1), passengers: 1, ..Default::default() };
        assert!(app.flights().search_flights(none).await.unwrap().into_inner().flights.is_empty(), "no demo flights");
        let mut new = create_flight_request("SQ638", "NRT", "SIN", 2);
        new.cabins[1].rows = 2;
        let flight = create_flight(&app, new).await.expect("NRT -> SIN created");
        assert_eq!((flight.origin_time_zone.as_str(), flight.destination_time_zone.as_str()), ("Asia/Tokyo", "Asia/Singapore"));
        let date = aerobook_sdk::local_times(&flight).unwrap().departure_date().to_string();
        let search = pb::SearchFlightsRequest { origin: "NRT".into(), destination: "SIN".into(), departure_date: date, passengers: 1, ..Default::default() };
        let found = app.flights().search_flights(search).await.unwrap().into_inner().flights;
        assert_eq!(found.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), [flight.id.as_str()]);

        let customer = Customer::new(&app);
        let booking = customer.book(&app, hold(&flight, vec![adult("Aiko")], &[])).await.expect("held");
        let pay = pb::CreatePaymentIntentRequest { booking_id: booking.id.clone() };
        app.payments().create_payment_intent(customer.keyed(pay, &idempotency_key())).await.expect("paid");
        app.settle_payments().await;
        assert_eq!(customer.get(&app, &booking).await.unwrap().status(), pb::BookingStatus::Confirmed);

        let unknown = create_flight(&app, create_flight_request("SQ639", "QQX", "SIN", 2)).await.unwrap_err();
        ContractError::from_status(&unknown).assert_validation(&["origin"]);
    }
}
