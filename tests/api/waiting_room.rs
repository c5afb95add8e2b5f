//! Waiting rooms: fair admission with signed passes, on SQLite and PostgreSQL + Redis, over gRPC and
//! gRPC-web; two instances sharing Redis serve one queue; without Redis each instance keeps its own.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    ContractError, Role, TestApp, backend_tests, create_flight_request,
    grpc_web::{Encoding, call as call_web},
    idempotency_key, request,
};
use chrono::{DateTime, Utc};
use futures::StreamExt as _;

use tonic::{Code, Status, Streaming};

use crate::bookings::{Customer, adult, flight_with_economy, hold};

/// How long a test waits for a stream message before failing (a guard, not a synchronisation).
const PATIENCE: Duration = Duration::from_secs(20);
/// The fastest admission: a waiter is admitted within milliseconds.
pub(crate) const AT_ONCE: i32 = 60_000;

pub(crate) async fn configure(
    app: &TestApp,
    flight: &pb::Flight,
    admit_per_minute: i32,
    opens_at: Option<DateTime<Utc>>,
) -> Result<pb::WaitingRoom, Status> {
    let message = pb::ConfigureWaitingRoomRequest {
        flight_id: flight.id.clone(),
        enabled: true,
        admit_per_minute,
        pass_ttl_seconds: 60,
        opens_at: opens_at.map(|at| prost_types::Timestamp { seconds: at.timestamp(), nanos: 0 }),
    };
    let (operator, key) = (app.bearer(Role::Operator), idempotency_key());
    let headers = [("authorization", operator.as_str()), ("idempotency-key", key.as_str())];
    app.waiting_rooms().configure_waiting_room(request(message, &headers)).await.map(tonic::Response::into_inner)
}

async fn room(app: &TestApp, flight: &pb::Flight) -> pb::WaitingRoom {
    let message = pb::GetWaitingRoomRequest { flight_id: flight.id.clone() };
    let operator = app.bearer(Role::Operator);
    app.waiting_rooms().get_waiting_room(request(message, &[("authorization", &operator)])).await.unwrap().into_inner()
}

pub(crate) async fn join(
    app: &TestApp,
    customer: &Customer,
    flight: &pb::Flight,
) -> Result<pb::WaitingRoomTicket, Status> {
    let message = pb::JoinWaitingRoomRequest { flight_id: flight.id.clone() };
    app.waiting_rooms().join_waiting_room(customer.plain(message)).await.map(tonic::Response::into_inner)
}

pub(crate) async fn watch(
    app: &TestApp,
    customer: &Customer,
    ticket: &pb::WaitingRoomTicket,
) -> Result<Streaming<pb::WaitingRoomStatus>, Status> {
    let message = pb::WatchWaitingRoomRequest { ticket_id: ticket.ticket_id.clone() };
    app.waiting_rooms().watch_waiting_room(customer.plain(message)).await.map(tonic::Response::into_inner)
}

async fn next(stream: &mut Streaming<pb::WaitingRoomStatus>) -> Option<pb::WaitingRoomStatus> {
    tokio::time::timeout(PATIENCE, stream.next()).await.expect("a status in time").map(|status| status.unwrap())
}

/// The stream's statuses up to its last, which it returns; the stream must end after it.
pub(crate) async fn last_status(mut stream: Streaming<pb::WaitingRoomStatus>) -> pb::WaitingRoomStatus {
    let mut last = None;
    while let Some(status) = next(&mut stream).await {
        last = Some(status);
    }
    last.expect("at least one status")
}

/// Joins and waits for the pass.
pub(crate) async fn pass_for(app: &TestApp, customer: &Customer, flight: &pb::Flight) -> String {
    let ticket = join(app, customer, flight).await.unwrap();
    let status = last_status(watch(app, customer, &ticket).await.unwrap()).await;
    assert!(!status.pass.is_empty(), "admitted with a pass: {status:?}");
    status.pass
}

pub(crate) fn with_pass(flight: &pb::Flight, pass: &str) -> pb::CreateBookingRequest {
    pb::CreateBookingRequest { waiting_room_pass: pass.to_owned(), ..hold(flight, vec![adult("Sara")], &[]) }
}

fn refused_for_want_of_a_pass(result: Result<pb::Booking, Status>) {
    let error = ContractError::from_status(&result.expect_err("refused"));
    assert_eq!((error.code, error.reason.as_str()), (Code::FailedPrecondition, "WAITING_ROOM_REQUIRED"), "{error:?}");
    assert!(!error.retryable);
}

/// A flight of two seats: one in business, one in economy.
async fn two_seat_flight(app: &TestApp) -> pb::Flight {
    let mut tiny = create_flight_request("XY9001", "RUH", "JED", 2);
    for cabin in &mut tiny.cabins {
        (cabin.rows, cabin.seat_letters) = (1, "A".into());
    }
    let operator = app.bearer(Role::Operator);
    let headers = [("authorization", operator.as_str()), ("idempotency-key", &idempotency_key())];
    app.flights().create_flight(request(tiny, &headers)).await.unwrap().into_inner()
}

backend_tests! {
    async fn a_flight_without_a_room_needs_no_pass_and_has_no_queue(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let customer = Customer::new(&app);
        customer.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("no pass needed");
        let error = ContractError::from_status(&join(&app, &customer, &flight).await.unwrap_err());
        assert_eq!(error.reason, "NOT_FOUND");
        let room = room(&app, &flight).await;
        assert_eq!((room.enabled, room.admit_per_minute, room.waiting, room.admitted), (false, 0, 0, 0));
        let get = pb::GetWaitingRoomRequest { flight_id: flight.id.clone() };
        let denied = app.waiting_rooms().get_waiting_room(customer.plain(get)).await.unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied, "operators only");
    }

    async fn configuring_a_room_names_every_bad_field_and_changes_nothing(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let message = pb::ConfigureWaitingRoomRequest {
            flight_id: flight.id.clone(),
            enabled: true,
            admit_per_minute: 0,
            pass_ttl_seconds: 3_601,
            opens_at: Some(prost_types::Timestamp { seconds: Utc::now().timestamp() + 400 * 86_400, nanos: 0 }),
        };
        let (operator, key) = (app.bearer(Role::Operator), idempotency_key());
        let headers = [("authorization", operator.as_str()), ("idempotency-key", key.as_str())];
        let error = app.waiting_rooms().configure_waiting_room(request(message, &headers)).await.unwrap_err();
        ContractError::from_status(&error).assert_validation(&["admit_per_minute", "pass_ttl_seconds", "opens_at"]);
        assert!(!room(&app, &flight).await.enabled, "nothing changed");
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("still no pass needed");

        let unknown = pb::Flight { id: uuid::Uuid::now_v7().to_string(), ..flight.clone() };
        let error = ContractError::from_status(&configure(&app, &unknown, 60, None).await.unwrap_err());
        assert_eq!(error.reason, "NOT_FOUND");

        let configured = configure(&app, &flight, 120, None).await.unwrap();
        assert_eq!((configured.enabled, configured.admit_per_minute, configured.pass_ttl_seconds), (true, 120, 60));
        assert!(configured.opens_at.is_some(), "unset means now");
        assert_eq!(room(&app, &flight).await, configured);
    }

    async fn a_pass_admits_only_its_caller_on_its_flight_until_it_expires(app: TestApp) {
        let flight = flight_with_economy(&app, 3, "ABC").await;
        let other_flight = flight_with_economy(&app, 3, "ABC").await;
        for flight in [&flight, &other_flight] {
            configure(&app, flight, AT_ONCE, None).await.unwrap();
        }
        let (sara, omar) = (Customer::new(&app), Customer::new(&app));
        let pass = pass_for(&app, &sara, &flight).await;

        let key = idempotency_key();
        refused_for_want_of_a_pass(app.bookings().create_booking(sara.keyed(with_pass(&flight, ""), &key)).await.map(|r| r.into_inner()));
        let tampered = format!("{}x", pass);
        refused_for_want_of_a_pass(sara.book(&app, with_pass(&flight, &tampered)).await);
        let (head, _) = pass.rsplit_once('.').unwrap();
        refused_for_want_of_a_pass(sara.book(&app, with_pass(&flight, &format!("{head}.AAAA"))).await);
        refused_for_want_of_a_pass(omar.book(&app, with_pass(&flight, &pass)).await);
        refused_for_want_of_a_pass(sara.book(&app, with_pass(&other_flight, &pass)).await);

        // The refusal was not stored: the same key, now with the pass, books.
        let booking = app.bookings().create_booking(sara.keyed(with_pass(&flight, &pass), &key)).await.expect("admitted");
        // A retry of that call answers it again, whatever pass it carries.
        let replay = app.bookings().create_booking(sara.keyed(with_pass(&flight, "stale"), &key)).await.expect("replayed");
        assert_eq!(replay.get_ref().id, booking.get_ref().id);

        app.clock.advance(Duration::from_secs(61));
        refused_for_want_of_a_pass(sara.book(&app, with_pass(&flight, &pass)).await);
        // An expired pass's ticket is spent: joining again takes a new one.
        let ticket = join(&app, &sara, &flight).await.unwrap();
        let fresh = last_status(watch(&app, &sara, &ticket).await.unwrap()).await;
        assert!(!fresh.pass.is_empty() && fresh.pass != pass);
        sara.book(&app, with_pass(&flight, &fresh.pass)).await.expect("a fresh pass books");
    }

    async fn joining_again_keeps_the_ticket_and_positions_follow_join_order(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        configure(&app, &flight, 1, None).await.unwrap();
        let customers: Vec<Customer> = (0..5).map(|_| Customer::new(&app)).collect();
        let mut tickets = Vec::new();
        for customer in &customers {
            tickets.push(join(&app, customer, &flight).await.unwrap());
        }
        let positions: Vec<i64> = tickets.iter().map(|t| t.position).collect();
        assert_eq!(positions, [1, 2, 3, 4, 5]);
        let again = join(&app, &customers[2], &flight).await.unwrap();
        assert_eq!(again, tickets[2], "the same ticket, the same place");

        let mut stream = watch(&app, &customers[3], &tickets[3]).await.unwrap();
        let first = next(&mut stream).await.unwrap();
        assert_eq!((first.position, first.pass.as_str(), first.sold_out), (4, "", false));
        let wait = first.estimated_wait.unwrap();
        assert!((239..=240).contains(&wait.seconds), "four places at one a minute: {wait:?}");
        // A minute on the clock admits the first; the fourth moves up one place.
        app.clock.advance(Duration::from_secs(60));
        assert_eq!(next(&mut stream).await.unwrap().position, 3);
        let state = room(&app, &flight).await;
        assert_eq!((state.waiting, state.admitted), (4, 1));

        let stranger = Customer::new(&app);
        let error = ContractError::from_status(&watch(&app, &stranger, &tickets[0]).await.unwrap_err());
        assert_eq!(error.reason, "NOT_FOUND", "only its owner watches a ticket");
        let bogus = pb::WaitingRoomTicket { ticket_id: "not-a-ticket".into(), ..tickets[0].clone() };
        ContractError::from_status(&watch(&app, &customers[0], &bogus).await.unwrap_err()).assert_validation(&["ticket_id"]);
    }

    async fn early_arrivals_are_placed_in_random_order_at_opening(app: TestApp) {
        let mut orders = Vec::new();
        for _ in 0..2 {
            let flight = flight_with_economy(&app, 2, "AB").await;
            let opens_at = app.clock.now() + chrono::TimeDelta::hours(1);
            configure(&app, &flight, 1, Some(opens_at)).await.unwrap();
            let customers: Vec<Customer> = (0..12).map(|_| Customer::new(&app)).collect();
            let mut early = Vec::new();
            for customer in &customers {
                let ticket = join(&app, customer, &flight).await.unwrap();
                assert!((1..=12).contains(&ticket.position));
                early.push(ticket);
            }
            assert_eq!(room(&app, &flight).await.waiting, 12, "early arrivals wait too");
            app.clock.advance(Duration::from_secs(3_601));
            let mut positions = Vec::new();
            for (customer, ticket) in customers.iter().zip(&early) {
                let again = join(&app, customer, &flight).await.unwrap();
                assert_eq!(again.ticket_id, ticket.ticket_id);
                positions.push(again.position);
            }
            let mut sorted = positions.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, (1..=12).collect::<Vec<i64>>(), "every early arrival has its own place");
            assert_ne!(positions, sorted, "arriving first gains nothing");
            let late = join(&app, &Customer::new(&app), &flight).await.unwrap();
            assert_eq!(late.position, 13, "later arrivals queue behind");
            orders.push(positions);
        }
        assert_ne!(orders[0], orders[1], "each opening draws its own order");
    }

    async fn admission_keeps_the_room_s_pace(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        // One a minute, so the real time a test takes (seconds) never moves a count.
        configure(&app, &flight, 1, None).await.unwrap();
        let customers: Vec<Customer> = (0..10).map(|_| Customer::new(&app)).collect();
        for customer in &customers {
            join(&app, customer, &flight).await.unwrap();
        }
        let mut admitted = Vec::new();
        for _ in 0..4 {
            app.clock.advance(Duration::from_secs(30));
            admitted.push(room(&app, &flight).await.admitted);
        }
        assert_eq!(admitted, [0, 1, 1, 2], "one a minute, not ten at once");
        app.clock.advance(Duration::from_secs(180));
        assert_eq!(room(&app, &flight).await.admitted, 5);
        app.clock.advance(Duration::from_secs(3_600));
        let room = room(&app, &flight).await;
        assert_eq!((room.admitted, room.waiting), (10, 0), "never more than joined");
    }

    async fn a_sell_out_tells_every_waiter_and_ends_their_streams(app: TestApp) {
        let flight = two_seat_flight(&app).await;
        configure(&app, &flight, AT_ONCE, None).await.unwrap();
        let buyers = [Customer::new(&app), Customer::new(&app)];
        let mut passes = Vec::new();
        for buyer in &buyers {
            passes.push(pass_for(&app, buyer, &flight).await);
        }
        // The room slows down; the queue is kept.
        configure(&app, &flight, 1, None).await.unwrap();
        let waiters: Vec<Customer> = (0..5).map(|_| Customer::new(&app)).collect();
        let mut streams = Vec::new();
        for waiter in &waiters {
            let ticket = join(&app, waiter, &flight).await.unwrap();
            let mut stream = watch(&app, waiter, &ticket).await.unwrap();
            assert!(next(&mut stream).await.unwrap().position > 0);
            streams.push(stream);
        }
        for ((buyer, pass), cabin) in buyers.iter().zip(&passes).zip([pb::CabinClass::Business, pb::CabinClass::Economy]) {
            let message = pb::CreateBookingRequest { cabin: cabin.into(), ..with_pass(&flight, pass) };
            buyer.book(&app, message).await.expect("a seat");
        }
        for stream in streams {
            let last = last_status(stream).await;
            assert!(last.sold_out && last.pass.is_empty(), "{last:?}");
        }
    }

    async fn admission_pauses_while_sold_out_and_resumes_when_seats_return(app: TestApp) {
        let flight = two_seat_flight(&app).await;
        // One a minute, on the test clock.
        configure(&app, &flight, 1, None).await.unwrap();
        let customers: Vec<Customer> = (0..4).map(|_| Customer::new(&app)).collect();
        let mut tickets = Vec::new();
        for customer in &customers {
            tickets.push(join(&app, customer, &flight).await.unwrap());
        }
        // The first two are admitted in turn and take both seats.
        let mut bookings = Vec::new();
        for (i, cabin) in [pb::CabinClass::Business, pb::CabinClass::Economy].into_iter().enumerate() {
            app.clock.advance(Duration::from_secs(60));
            assert_eq!(room(&app, &flight).await.admitted, i as i64 + 1);
            let status = last_status(watch(&app, &customers[i], &tickets[i]).await.unwrap()).await;
            let message = pb::CreateBookingRequest { cabin: cabin.into(), ..with_pass(&flight, &status.pass) };
            bookings.push(customers[i].book(&app, message).await.expect("a seat"));
        }

        // Sold out: five minutes pass (the holds last ten) and nobody more is admitted, nor given a pass.
        assert_eq!(room(&app, &flight).await.admitted, 2);
        for _ in 0..5 {
            app.clock.advance(Duration::from_secs(60));
            assert_eq!(room(&app, &flight).await.admitted, 2, "admission is paused");
        }
        let told = last_status(watch(&app, &customers[2], &tickets[2]).await.unwrap()).await;
        assert!(told.sold_out && told.pass.is_empty(), "{told:?}");

        // A cancellation returns a seat: admission resumes at its pace, from now, not in a burst.
        customers[0].cancel(&app, &bookings[0]).await.expect("cancelled");
        assert_eq!(room(&app, &flight).await.admitted, 2, "the sold-out spell is not admitted at once");
        app.clock.advance(Duration::from_secs(60));
        assert_eq!(room(&app, &flight).await.admitted, 3);
        let admitted = last_status(watch(&app, &customers[2], &tickets[2]).await.unwrap()).await;
        assert!(!admitted.pass.is_empty() && !admitted.sold_out, "{admitted:?}");
        let message = pb::CreateBookingRequest { cabin: pb::CabinClass::Business.into(), ..with_pass(&flight, &admitted.pass) };
        customers[2].book(&app, message).await.expect("the returned seat");
    }

    async fn an_unreachable_redis_leaves_each_instance_its_own_room(
        app: TestApp,
        settings = [("REDIS_URL", "redis://127.0.0.1:1")]
    ) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        configure(&app, &flight, AT_ONCE, None).await.unwrap();
        let customer = Customer::new(&app);
        let pass = pass_for(&app, &customer, &flight).await;
        customer.book(&app, with_pass(&flight, &pass)).await.expect("admitted by this instance's room");
        assert_eq!(room(&app, &flight).await.admitted, 1);
    }

    async fn the_room_works_from_a_browser(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        configure(&app, &flight, 1, None).await.unwrap();
        let customer = Customer::new(&app);
        let message = pb::JoinWaitingRoomRequest { flight_id: flight.id.clone() };
        let bearer = customer.bearer.clone();
        let headers = [("origin", "http://localhost:5173"), ("authorization", bearer.as_str())];
        let path = "/aerobook.v1.WaitingRoomService/JoinWaitingRoom";
        let first: pb::WaitingRoomTicket = call_web(app.addr, path, &message, Encoding::Text, &headers).await.decode();
        let again: pb::WaitingRoomTicket = call_web(app.addr, path, &message, Encoding::Binary, &headers).await.decode();
        assert_eq!((first.position, &again), (1, &first));
        // A minute later it is admitted: the server stream sends the pass and ends.
        app.clock.advance(Duration::from_secs(60));
        let watch = pb::WatchWaitingRoomRequest { ticket_id: first.ticket_id.clone() };
        let path = "/aerobook.v1.WaitingRoomService/WatchWaitingRoom";
        let statuses = call_web(app.addr, path, &watch, Encoding::Binary, &headers).await;
        assert_eq!(statuses.grpc_status(), Some(0), "{statuses:?}");
        let status: pb::WaitingRoomStatus = statuses.decode();
        assert_eq!(status.position, 0);
        assert!(!status.pass.is_empty());
    }
}

/// Two instances on one Redis serve one queue: one order, and each ticket admitted once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_queue() {
    let Some(first) = TestApp::external().await else { return };
    if first.redis_prefix.is_none() {
        eprintln!("skipped: REDIS_URL is not set");
        return;
    }
    let second = first.another_instance().await;
    let flight = flight_with_economy(&first, 2, "AB").await;
    configure(&first, &flight, 1, None).await.unwrap();
    let customers: Vec<Customer> = (0..6).map(|_| Customer::new(&first)).collect();
    let mut positions = Vec::new();
    for (i, customer) in customers.iter().enumerate() {
        let instance = if i % 2 == 0 { &first } else { &second };
        positions.push(join(instance, customer, &flight).await.unwrap().position);
    }
    assert_eq!(positions, [1, 2, 3, 4, 5, 6], "one queue, in join order across instances");

    for app in [&first, &second] {
        app.clock.advance(Duration::from_secs(150));
    }
    let (a, b) = (room(&first, &flight).await, room(&second, &flight).await);
    assert_eq!((a.admitted, b.admitted, a.waiting), (2, 2, 4), "both instances see one count");

    // The first customer, admitted, watches on both instances: one pass expiry, not two.
    let ticket = join(&first, &customers[0], &flight).await.unwrap();
    assert_eq!(ticket.position, 0);
    let on_first = last_status(watch(&first, &customers[0], &ticket).await.unwrap()).await;
    let on_second = last_status(watch(&second, &customers[0], &ticket).await.unwrap()).await;
    assert!(!on_first.pass.is_empty());
    assert_eq!(on_first.pass_expires_at, on_second.pass_expires_at, "admitted once");
    customers[0].book(&second, with_pass(&flight, &on_first.pass)).await.expect("either instance accepts the pass");
}
