//! CreateFlight: the idempotency-key rule, validation that writes nothing, and search-cache invalidation.

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    ContractError, Role, TestApp, backend_tests, create_flight_request, idempotency_key, request, search_request,
};
use sea_orm::ConnectionTrait as _;

async fn flight_count(app: &TestApp) -> i64 {
    let db = app.database().await;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(db.get_database_backend(), "SELECT COUNT(*) AS n FROM flights"))
        .await
        .unwrap()
        .unwrap();
    row.try_get("", "n").unwrap()
}

fn local_date(request: &pb::CreateFlightRequest) -> String {
    let departs = request.departs_at.unwrap().seconds;
    chrono::DateTime::from_timestamp(departs + 3 * 3600, 0).unwrap().format("%Y-%m-%d").to_string()
}

backend_tests! {
    async fn a_missing_or_malformed_idempotency_key_is_rejected_and_nothing_is_written(app: TestApp) {
        let before = flight_count(&app).await;
        let flight = create_flight_request("XY900", "RUH", "JED", 2);
        let short = "too-short-key";
        let long = "k".repeat(256);
        let operator = app.bearer(Role::Operator);
        let auth = ("authorization", operator.as_str());
        for headers in [vec![auth], vec![auth, ("idempotency-key", short)], vec![auth, ("idempotency-key", long.as_str())]] {
            let status = app.flights().create_flight(request(flight.clone(), &headers)).await.unwrap_err();
            ContractError::from_status(&status).assert_validation(&["idempotency-key"]);
        }
        assert_eq!(flight_count(&app).await, before);
    }

    async fn a_new_flight_is_searchable_at_once(app: TestApp) {
        let flight = create_flight_request("XY901", "RUH", "JED", 2);
        let mut search = search_request("RUH", "JED", &local_date(&flight));
        search.page_size = 100;
        let before = app.flights().search_flights(search.clone()).await.unwrap().into_inner().flights;
        assert!(before.iter().all(|f| f.flight_number != "XY901"));

        let created = app.flights()
            .create_flight(request(flight.clone(), &[("idempotency-key", &idempotency_key()), ("authorization", &app.bearer(Role::Operator))]))
            .await
            .expect("created")
            .into_inner();
        assert_eq!((created.flight_number.as_str(), created.origin.as_str()), ("XY901", "RUH"));
        assert_eq!(created.departs_at, flight.departs_at);
        let seats: Vec<(pb::CabinClass, i32, i32)> = created.cabins.iter().map(|c| (c.cabin(), c.seats_total, c.seats_available)).collect();
        assert_eq!(seats, [(pb::CabinClass::Business, 4, 4), (pb::CabinClass::Economy, 9, 9)]);

        let after = app.flights().search_flights(search).await.unwrap().into_inner().flights;
        assert_eq!(after.len(), before.len() + 1, "the route's cached searches were dropped");
        assert!(after.contains(&created));
        let seat_map = app.flights().get_seat_map(pb::GetSeatMapRequest { flight_id: created.id, cabin: 0 }).await.unwrap().into_inner();
        let numbers: Vec<&str> = seat_map.seats.iter().map(|s| s.seat_number.as_str()).collect();
        assert_eq!(numbers, ["1A", "1C", "2A", "2C", "10A", "10B", "10C", "11A", "11B", "11C", "12A", "12B", "12C"]);
    }

    async fn searches_only_show_flights_with_room_for_the_party(app: TestApp) {
        let flight = create_flight_request("XY902", "DMM", "DXB", 2);
        app.flights().create_flight(request(flight.clone(), &[("idempotency-key", &idempotency_key()), ("authorization", &app.bearer(Role::Operator))])).await.unwrap();
        let mut search = search_request("DMM", "DXB", &local_date(&flight));
        search.cabin = pb::CabinClass::Business.into();
        for (passengers, found) in [(4, 1), (5, 0)] {
            search.passengers = passengers;
            let flights = app.flights().search_flights(search.clone()).await.unwrap().into_inner().flights;
            assert_eq!(flights.len(), found, "{passengers} passengers in a 4-seat business cabin");
        }
    }

    async fn invalid_flights_name_every_field_and_write_nothing(app: TestApp) {
        let before = flight_count(&app).await;
        let key = idempotency_key();
        let operator = app.bearer(Role::Operator);
        let mut flight = create_flight_request("xy1", "RUH", "RUH", 2);
        flight.arrives_at = flight.departs_at;
        flight.cabins[1].first_row = 2;
        flight.cabins[1].seat_letters = "AA".into();
        flight.cabins[0].price.as_mut().unwrap().currency_code = "XXX".into();
        let status = app.flights().create_flight(request(flight, &[("idempotency-key", &key), ("authorization", &operator)])).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&[
            "cabins[0].price.currency_code",
            "cabins[1].seat_letters",
            "flight_number",
            "destination",
            "arrives_at",
        ]);

        let mut overlapping = create_flight_request("XY903", "RUH", "JED", 2);
        overlapping.cabins[1].first_row = 2;
        overlapping.cabins.push(pb::CabinConfig { cabin: 0, ..overlapping.cabins[0].clone() });
        let status = app.flights().create_flight(request(overlapping, &[("idempotency-key", &key), ("authorization", &operator)])).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["cabins[2].cabin", "cabins[1].first_row"]);

        let mut past = create_flight_request("XY904", "RUH", "JED", -1);
        past.cabins.clear();
        let status = app.flights().create_flight(request(past, &[("idempotency-key", &key), ("authorization", &operator)])).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["departs_at", "cabins"]);

        let unknown = create_flight_request("XY905", "ZZZ", "JED", 2);
        let status = app.flights().create_flight(request(unknown, &[("idempotency-key", &key), ("authorization", &operator)])).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["origin"]);
        assert_eq!(flight_count(&app).await, before);
    }

    async fn a_flight_number_departs_once_at_a_given_time(app: TestApp) {
        let flight = create_flight_request("XY906", "JED", "CAI", 3);
        app.flights().create_flight(request(flight.clone(), &[("idempotency-key", &idempotency_key()), ("authorization", &app.bearer(Role::Operator))])).await.unwrap();
        let before = flight_count(&app).await;
        let status = app.flights().create_flight(request(flight, &[("idempotency-key", &idempotency_key()), ("authorization", &app.bearer(Role::Operator))])).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["flight_number"]);
        assert_eq!(flight_count(&app).await, before);
    }
}
