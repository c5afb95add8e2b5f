//! SearchFlights, GetFlight and GetSeatMap over the seeded demo schedule.

use aerobook_proto::v1::{self as pb, CabinClass};
use aerobook_tests::{ContractError, backend_tests, riyadh_date, search_request};
use sea_orm::ConnectionTrait as _;

backend_tests! {
    async fn search_finds_the_seeded_departures_in_order(app: TestApp) {
        let date = riyadh_date(1);
        let flights = app.flights().search_flights(search_request("RUH", "JED", &date)).await.expect("search").into_inner().flights;
        let numbers: Vec<&str> = flights.iter().map(|f| f.flight_number.as_str()).collect();
        assert_eq!(numbers, ["AB101", "AB103", "AB105", "AB107"], "the day's RUH-JED departures, by time");
        for flight in &flights {
            assert_eq!((flight.origin.as_str(), flight.destination.as_str()), ("RUH", "JED"));
            assert_eq!(flight.status(), pb::FlightStatus::Scheduled);
            let cabins: Vec<CabinClass> = flight.cabins.iter().map(|c| c.cabin()).collect();
            assert_eq!(cabins, [CabinClass::Business, CabinClass::Economy], "front cabin first");
            for cabin in &flight.cabins {
                assert!(cabin.seats_total > 0 && cabin.seats_available == cabin.seats_total);
                assert_eq!(cabin.price.as_ref().unwrap().currency_code, "SAR");
            }
            let departs = flight.departs_at.unwrap();
            let local = chrono::DateTime::from_timestamp(departs.seconds + 3 * 3600, 0).unwrap().format("%Y-%m-%d").to_string();
            assert_eq!(local, date, "the local departure date at RUH is the searched date");
        }
        let mut sorted = flights.clone();
        sorted.sort_by_key(|f| f.departs_at.unwrap().seconds);
        assert_eq!(sorted, flights);
    }

    /// Flights carry their airports' time zones, so clients show local times: AB101 leaves Riyadh at 06:00.
    async fn flights_carry_their_airports_time_zones(app: TestApp) {
        let flights = app.flights().search_flights(search_request("RUH", "LHR", &riyadh_date(2))).await.unwrap().into_inner().flights;
        let flight = &flights[0];
        assert_eq!((flight.origin_time_zone.as_str(), flight.destination_time_zone.as_str()), ("Asia/Riyadh", "Europe/London"));
        let domestic = app.flights().search_flights(search_request("RUH", "JED", &riyadh_date(2))).await.unwrap().into_inner().flights;
        let times = aerobook_sdk::local_times(&domestic[0]).expect("local times");
        assert_eq!((domestic[0].flight_number.as_str(), times.to_string().as_str()), ("AB101", "06:00 → 07:45"));
    }

    /// Without a cabin, a search looks at every cabin: a party too large for what is left in economy still
    /// finds the flight through business, and each flight lists all its cabins.
    async fn a_search_without_a_cabin_considers_every_cabin(app: TestApp) {
        let db = app.database().await;
        // Eight seats left in AB701's economy on day 1, and in both its cabins on day 2 (before any search,
        // so no cached page hides the change).
        let squeeze = |cabins: &str, day: i64| format!(
            "UPDATE flight_cabins SET seats_available = 8 WHERE cabin IN ({cabins}) AND flight_id IN \
             (SELECT id FROM flights WHERE flight_number = 'AB701' AND departure_date = '{}')",
            riyadh_date(day)
        );
        db.execute_unprepared(&squeeze("'ECONOMY'", 1)).await.unwrap();
        db.execute_unprepared(&squeeze("'ECONOMY', 'BUSINESS'", 2)).await.unwrap();
        let search = |day: i64, cabin: CabinClass| {
            let mut request = search_request("JED", "MED", &riyadh_date(day));
            request.cabin = cabin.into();
            request.passengers = 9;
            request
        };
        let numbers = |flights: &[pb::Flight]| flights.iter().map(|f| f.flight_number.clone()).collect::<Vec<_>>();

        let any = app.flights().search_flights(search(1, CabinClass::Unspecified)).await.expect("any cabin").into_inner().flights;
        assert_eq!(numbers(&any), ["AB701", "AB703"], "business still has room for nine on AB701");
        assert!(any.iter().all(|f| f.cabins.len() == 2), "each flight lists all its cabins");
        let economy = app.flights().search_flights(search(1, CabinClass::Economy)).await.unwrap().into_inner().flights;
        assert_eq!(numbers(&economy), ["AB703"]);
        let full = app.flights().search_flights(search(2, CabinClass::Unspecified)).await.unwrap().into_inner().flights;
        assert_eq!(numbers(&full), ["AB703"], "no cabin of AB701 has room for nine on day 2");
    }

    async fn pages_walk_the_whole_result_without_overlap(app: TestApp) {
        let all = app.flights().search_flights(search_request("RUH", "JED", &riyadh_date(2))).await.unwrap().into_inner().flights;
        let mut walked = Vec::new();
        let mut request = search_request("RUH", "JED", &riyadh_date(2));
        request.page_size = 3;
        loop {
            let page = app.flights().search_flights(request.clone()).await.expect("page").into_inner();
            assert!(page.flights.len() <= 3);
            walked.extend(page.flights);
            if page.next_page_token.is_empty() {
                break;
            }
            request.page_token = page.next_page_token;
        }
        assert_eq!(walked, all);
        assert_eq!(walked.len(), 4);
    }

    async fn get_flight_and_seat_map_match_the_search(app: TestApp) {
        let found = app.flights().search_flights(search_request("RUH", "DXB", &riyadh_date(1))).await.unwrap().into_inner().flights;
        let flight = &found[0];
        let fetched = app.flights().get_flight(pb::GetFlightRequest { flight_id: flight.id.clone() }).await.expect("get").into_inner();
        assert_eq!(&fetched, flight);

        let whole = app.flights()
            .get_seat_map(pb::GetSeatMapRequest { flight_id: flight.id.clone(), cabin: 0 })
            .await
            .expect("seat map")
            .into_inner();
        let total: i32 = flight.cabins.iter().map(|c| c.seats_total).sum();
        assert_eq!(whole.seats.len() as i32, total);
        assert_eq!(whole.seats[0].seat_number, "1A");
        assert!(whole.seats.iter().all(|s| s.available));
        let economy = app.flights()
            .get_seat_map(pb::GetSeatMapRequest { flight_id: flight.id.clone(), cabin: CabinClass::Economy.into() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(economy.seats.len(), 26 * 6);
        assert!(economy.seats.iter().all(|s| s.cabin() == CabinClass::Economy));
        assert_eq!((economy.seats[0].seat_number.as_str(), economy.seats[155].seat_number.as_str()), ("10A", "35F"));

        let first = app.flights()
            .get_seat_map(pb::GetSeatMapRequest { flight_id: flight.id.clone(), cabin: CabinClass::First.into() })
            .await
            .unwrap_err();
        ContractError::from_status(&first).assert_validation(&["cabin"]);
    }

    async fn missing_flights_are_not_found(app: TestApp) {
        let missing = uuid::Uuid::now_v7().to_string();
        let status = app.flights().get_flight(pb::GetFlightRequest { flight_id: missing.clone() }).await.unwrap_err();
        let error = ContractError::from_status(&status);
        assert_eq!((error.code, error.reason.as_str(), error.retryable), (tonic::Code::NotFound, "NOT_FOUND", false));
        let status = app.flights().get_seat_map(pb::GetSeatMapRequest { flight_id: missing, cabin: 0 }).await.unwrap_err();
        assert_eq!(ContractError::from_status(&status).reason, "NOT_FOUND");
    }

    /// Searches are served from the cache for the TTL: a change made behind the server's back is not seen
    /// until the route is invalidated.
    async fn searches_are_cached_per_route(app: TestApp) {
        let request = search_request("JED", "MED", &riyadh_date(1));
        let before = app.flights().search_flights(request.clone()).await.unwrap().into_inner();
        let db = app.database().await;
        db.execute_unprepared("UPDATE flight_cabins SET seats_available = seats_available - 1").await.unwrap();
        let cached = app.flights().search_flights(request.clone()).await.unwrap().into_inner();
        assert_eq!(cached, before, "answered from the cache");
        let exact = app.flights().get_flight(pb::GetFlightRequest { flight_id: before.flights[0].id.clone() }).await.unwrap().into_inner();
        assert_eq!(exact.cabins[0].seats_available, before.flights[0].cabins[0].seats_available - 1, "GetFlight is exact");
        if let Some(prefix) = &app.redis_prefix {
            let redis = fred::prelude::Builder::from_config(fred::prelude::Config::from_url(&std::env::var("REDIS_URL").unwrap()).unwrap()).build().unwrap();
            fred::prelude::ClientLike::init(&redis).await.unwrap();
            let entries: i64 = fred::prelude::HashesInterface::hlen(&redis, format!("{prefix}search:JED-MED")).await.unwrap();
            assert_eq!(entries, 1, "the search is cached in Redis under the route's key");
            let ttl: i64 = fred::prelude::KeysInterface::ttl(&redis, format!("{prefix}search:JED-MED")).await.unwrap();
            assert!((1..=120).contains(&ttl), "route entries expire within 120 s, got {ttl}");
        }
    }

    /// A return trip is searched in one call: each leg gets what SearchFlights gives it, in leg order;
    /// bad legs are named by their place in the request.
    async fn a_trip_search_answers_every_leg_as_searched_alone(app: TestApp) {
        let leg = |origin: &str, destination: &str, days: i64| pb::TripLeg {
            origin: origin.into(),
            destination: destination.into(),
            departure_date: riyadh_date(days),
        };
        let trip = pb::SearchTripsRequest {
            legs: vec![leg("RUH", "JED", 1), leg("JED", "RUH", 2)],
            passengers: 1,
            cabin: CabinClass::Economy.into(),
        };
        let legs = app.flights().search_trips(trip.clone()).await.expect("searched").into_inner().legs;
        assert_eq!(legs.len(), 2);
        for (found, (origin, destination, days)) in legs.iter().zip([("RUH", "JED", 1), ("JED", "RUH", 2)]) {
            let alone = app.flights().search_flights(search_request(origin, destination, &riyadh_date(days))).await.unwrap();
            assert!(!found.flights.is_empty(), "the seeded schedule flies {origin}-{destination}");
            assert_eq!(found.flights, alone.into_inner().flights, "{origin}-{destination} as searched alone");
        }

        let mut bad = trip.clone();
        bad.legs[1].departure_date = "2026-13-01".into();
        bad.legs.push(leg("DXB", "DXB", 3));
        bad.passengers = 0;
        let status = app.flights().search_trips(bad).await.unwrap_err();
        ContractError::from_status(&status).assert_validation(&["passengers", "legs[1].departure_date", "legs[2].destination"]);
        let none = pb::SearchTripsRequest { legs: Vec::new(), ..trip.clone() };
        ContractError::from_status(&app.flights().search_trips(none).await.unwrap_err()).assert_validation(&["legs"]);
        let seven = pb::SearchTripsRequest { legs: vec![leg("RUH", "JED", 1); 7], ..trip };
        ContractError::from_status(&app.flights().search_trips(seven).await.unwrap_err()).assert_validation(&["legs"]);
    }
}
