//! The Rust SDK (`aerobook-sdk`) against the real server: the whole booking flow, a repeat after a lost
//! answer that books once, one token renewal shared by concurrent calls, and every error code the server
//! produces decoded with the server's correlation id. Each test runs on SQLite and on PostgreSQL + Redis.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use aerobook_sdk::{
    ApiError, Client, ErrorCode, ErrorOrigin, MemoryTokenStore, RetryPolicy, TokenStore, Tokens, WaitForPassError,
    proto as pb,
};
use aerobook_tests::{
    Role, TestApp, backend_tests, create_flight_request, expired_access_token,
    proxy::{FaultProxy, TlsProxy},
    riyadh_date,
    stripe::Misbehaviour,
    stripe_tests,
};
use futures::{StreamExt as _, future::join_all};
use sea_orm::{ConnectionTrait as _, TransactionTrait as _};

use crate::bookings::{PAST_HOLD_TTL, adult, economy_available, flight_with_economy, hold};

fn client_of(url: String) -> Client {
    Client::builder(url).build().expect("valid endpoint")
}

fn client(app: &TestApp) -> Client {
    client_of(format!("http://{}", app.addr))
}

/// A client that surfaces every error at once, to see what the server said.
fn impatient(app: &TestApp) -> Client {
    Client::builder(format!("http://{}", app.addr)).retry(RetryPolicy::never()).build().expect("valid endpoint")
}

fn registration() -> pb::RegisterRequest {
    pb::RegisterRequest {
        email: format!("sdk-{}@example.com", uuid::Uuid::new_v4().simple()),
        password: "correct horse battery staple".into(),
        full_name: "Layla Haddad".into(),
    }
}

/// Registers a new customer through `client`, which keeps the session.
async fn sign_up(client: &Client) -> pb::AuthTokens {
    client.auth().register(registration()).await.expect("registered").into_inner()
}

fn user_id(tokens: &pb::AuthTokens) -> uuid::Uuid {
    tokens.user.as_ref().expect("user").id.parse().expect("uuid")
}

async fn bookings_on(client: &Client, flight: &pb::Flight) -> Vec<pb::Booking> {
    let listed = client.booking().list_bookings(pb::ListBookingsRequest::default()).await.expect("listed");
    listed.into_inner().bookings.into_iter().filter(|booking| booking.flight_id == flight.id).collect()
}

/// Counts how often the client saves tokens: once per sign-in or renewal.
#[derive(Default)]
struct CountingStore {
    tokens: MemoryTokenStore,
    saves: AtomicUsize,
}

impl TokenStore for CountingStore {
    fn load(&self) -> Option<Tokens> {
        self.tokens.load()
    }

    fn save(&self, tokens: Option<Tokens>) {
        self.saves.fetch_add(1, Ordering::SeqCst);
        self.tokens.save(tokens);
    }
}

backend_tests! {
    /// Register, search, hold chosen seats, pay with the simulated provider, see it confirmed, hold and cancel
    /// another seat, sign out: the flow of the crate docs.
    async fn the_whole_booking_flow_runs_through_the_sdk(app: TestApp) {
        let client = client(&app);
        let registered = client.auth().register(registration()).await.unwrap();
        assert!(!registered.correlation_id().is_empty());
        assert!(client.tokens().is_some(), "the registration's tokens are the session");
        let me = client.auth().get_me(pb::GetMeRequest {}).correlation_id("sdk-flow-1").await.unwrap();
        assert_eq!(me.correlation_id(), "sdk-flow-1", "the server echoes the caller's id");
        assert_eq!(me.id, registered.user.as_ref().unwrap().id);

        let found = client
            .flight()
            .search_flights(pb::SearchFlightsRequest {
                origin: "RUH".into(),
                destination: "JED".into(),
                departure_date: riyadh_date(1),
                passengers: 2,
                cabin: pb::CabinClass::Economy.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let flight = found.flights.first().expect("demo flights tomorrow").clone();
        let seat_map = client
            .flight()
            .get_seat_map(pb::GetSeatMapRequest { flight_id: flight.id.clone(), cabin: pb::CabinClass::Economy.into() })
            .await
            .unwrap();
        let seats: Vec<String> =
            seat_map.seats.iter().filter(|seat| seat.available).take(2).map(|seat| seat.seat_number.clone()).collect();
        let seat_refs: Vec<&str> = seats.iter().map(String::as_str).collect();
        let available = economy_available(&app, &flight).await;

        let held = client.booking().create_booking(hold(&flight, vec![adult("Layla"), adult("Omar")], &seat_refs)).await.unwrap();
        assert!(!held.replayed());
        assert_eq!((held.status(), &held.seat_numbers), (pb::BookingStatus::Held, &seats));
        assert_eq!(economy_available(&app, &flight).await, available - 2);

        let payment = client
            .payment()
            .create_payment_intent(pb::CreatePaymentIntentRequest { booking_id: held.id.clone() })
            .await
            .unwrap();
        assert!(!payment.client_secret.is_empty(), "the payer gets the client secret");
        app.settle_payments().await;
        let confirmed = client.booking().get_booking(pb::GetBookingRequest { booking_id: held.id.clone() }).await.unwrap();
        assert_eq!(confirmed.status(), pb::BookingStatus::Confirmed);
        let paid = client.payment().get_payment(pb::GetPaymentRequest { booking_id: held.id.clone() }).await.unwrap();
        assert_eq!(paid.status(), pb::PaymentStatus::Succeeded);

        let extra = client.booking().create_booking(hold(&flight, vec![adult("Sami")], &[])).await.unwrap();
        let cancelled = client
            .booking()
            .cancel_booking(pb::CancelBookingRequest { booking_id: extra.id.clone(), reason: "plans changed".into() })
            .await
            .unwrap();
        assert_eq!(cancelled.status(), pb::BookingStatus::Cancelled);
        assert_eq!(economy_available(&app, &flight).await, available - 2, "the cancelled seat is back");
        assert_eq!(bookings_on(&client, &flight).await.len(), 2);

        client.sign_out().await.unwrap();
        assert!(client.tokens().is_none());
        let error = client.auth().get_me(pb::GetMeRequest {}).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unauthorized);
    }

    /// The server books, then the connection drops before the answer arrives: the SDK repeats the call with
    /// the same idempotency key and gets the stored answer. One booking, one seat taken.
    async fn a_hold_whose_answer_is_lost_is_repeated_and_books_once(app: TestApp) {
        let proxy = FaultProxy::start(app.addr).await;
        let client = client_of(proxy.url());
        sign_up(&client).await;
        let flight = flight_with_economy(&app, 1, "ABC").await;

        proxy.lose_next_answer();
        let calls_before = proxy.requests();
        let booking = client.booking().create_booking(hold(&flight, vec![adult("Layla")], &["10A"])).await.unwrap();
        assert_eq!(proxy.answers_lost(), 1);
        assert_eq!(proxy.requests() - calls_before, 2, "the call and one repeat");
        assert!(booking.replayed(), "the repeat got the stored answer");
        assert_eq!(booking.seat_numbers, ["10A"]);

        let bookings = bookings_on(&client, &flight).await;
        assert_eq!(bookings.len(), 1);
        assert_eq!(bookings[0].id, booking.id);
        assert_eq!(economy_available(&app, &flight).await, 2);
    }

    /// A call that may have acted and carries no key is not repeated after a lost answer: the caller learns
    /// the outcome is unknown, and the account was created exactly once.
    async fn a_registration_whose_answer_is_lost_is_not_repeated(app: TestApp) {
        let proxy = FaultProxy::start(app.addr).await;
        let client = client_of(proxy.url());
        let registration = registration();

        proxy.lose_next_answer();
        let calls_before = proxy.requests();
        let error = client.auth().register(registration.clone()).await.unwrap_err();
        assert_eq!(proxy.requests() - calls_before, 1, "not repeated");
        assert_eq!((error.origin, error.code), (ErrorOrigin::Transport, ErrorCode::ServiceUnavailable));
        assert!(!error.correlation_id.is_empty(), "the id the SDK sent");

        // Checked on a connection of its own: the proxy's dropped one may still be handed to the next call
        // (which a sign-in, not safe to repeat, would then fail with).
        let login = pb::LoginRequest { email: registration.email, password: registration.password };
        client_of(format!("http://{}", app.addr)).auth().login(login).await.expect("the account was created once");
    }

    /// Twenty calls sent with an access token the server calls expired share one renewal: the refresh token
    /// is exchanged once (a second exchange would end the session) and every call then succeeds.
    async fn concurrent_calls_with_an_expired_token_share_one_refresh(app: TestApp) {
        let store = Arc::new(CountingStore::default());
        let client = Client::builder(format!("http://{}", app.addr))
            .token_store(Arc::clone(&store) as Arc<dyn TokenStore>)
            .build()
            .unwrap();
        let signed_in = sign_up(&client).await;
        // As if the server's clock had run ahead: the client believes the token good for an hour.
        client.set_tokens(Some(Tokens {
            access_token: expired_access_token(user_id(&signed_in), Role::Customer),
            refresh_token: Some(signed_in.refresh_token.clone()),
            access_token_expires_at: Some(std::time::SystemTime::now() + Duration::from_secs(3600)),
        }));
        let saves_before = store.saves.load(Ordering::SeqCst);

        let calls = (0..20).map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.auth().get_me(pb::GetMeRequest {}).await })
        });
        for answer in join_all(calls).await {
            assert_eq!(answer.unwrap().unwrap().id, user_id(&signed_in).to_string());
        }
        assert_eq!(store.saves.load(Ordering::SeqCst) - saves_before, 1, "one refresh");
        let renewed = client.tokens().unwrap();
        assert_ne!(renewed.refresh_token.as_deref(), Some(signed_in.refresh_token.as_str()), "rotated");
        client.auth().get_me(pb::GetMeRequest {}).await.expect("the renewed session works");
    }

    /// Without a refresh token the expiry reaches the caller; with a refused one the session ends.
    async fn tokens_that_cannot_be_renewed_end_in_the_servers_error(app: TestApp) {
        let client = client(&app);
        let signed_in = sign_up(&client).await;
        let expired = expired_access_token(user_id(&signed_in), Role::Customer);
        client.set_tokens(Some(Tokens { access_token: expired.clone(), refresh_token: None, access_token_expires_at: None }));
        let error = client.auth().get_me(pb::GetMeRequest {}).await.unwrap_err();
        assert_eq!((error.code, error.origin), (ErrorCode::TokenExpired, ErrorOrigin::Server));

        client.set_tokens(Some(Tokens {
            access_token: expired,
            refresh_token: Some("not-a-refresh-token".into()),
            access_token_expires_at: None,
        }));
        let error = client.auth().get_me(pb::GetMeRequest {}).await.unwrap_err();
        assert_eq!(error.code, ErrorCode::Unauthorized, "the refresh was refused");
        assert!(client.tokens().is_none(), "a refused refresh ends the session");
    }

    /// A key the caller chooses is sent as is: the same intent submitted twice books once.
    async fn a_caller_supplied_key_replays_the_first_answer(app: TestApp) {
        let client = client(&app);
        sign_up(&client).await;
        let flight = flight_with_economy(&app, 1, "AB").await;
        let key = format!("checkout-{}", uuid::Uuid::new_v4());
        let first = client.booking().create_booking(hold(&flight, vec![adult("Layla")], &[])).idempotency_key(&key).await.unwrap();
        let again = client.booking().create_booking(hold(&flight, vec![adult("Layla")], &[])).idempotency_key(&key).await.unwrap();
        assert_eq!((first.id.as_str(), first.replayed(), again.replayed()), (again.id.as_str(), false, true));
        assert_eq!(economy_available(&app, &flight).await, 1);
    }

    /// The stream's first message is the current count, the next one follows a hold.
    async fn availability_streams_through_the_sdk(app: TestApp) {
        let client = client(&app);
        sign_up(&client).await;
        let flight = flight_with_economy(&app, 1, "AB").await;
        let mut updates = client
            .flight()
            .watch_availability(pb::WatchAvailabilityRequest { flight_id: flight.id.clone() })
            .await
            .unwrap()
            .into_inner();
        let economy = |update: &pb::AvailabilityUpdate| {
            update.cabins.iter().find(|cabin| cabin.cabin() == pb::CabinClass::Economy).unwrap().seats_available
        };
        assert_eq!(economy(&updates.next().await.unwrap().unwrap()), 2);
        client.booking().create_booking(hold(&flight, vec![adult("Layla")], &[])).await.unwrap();
        assert_eq!(economy(&updates.message().await.unwrap().unwrap()), 1);
    }

    /// Over TLS, trusting a private CA and naming the certificate's host: the same calls work.
    async fn the_client_connects_over_tls(app: TestApp) {
        let proxy = TlsProxy::start(app.addr).await;
        let client = Client::builder(proxy.url())
            .ca_certificate(proxy.ca_pem())
            .tls_domain("localhost")
            .connect()
            .await
            .expect("TLS handshake");
        sign_up(&client).await;
        client.auth().get_me(pb::GetMeRequest {}).await.expect("a call over TLS");

        let untrusting = Client::builder(proxy.url()).tls_domain("localhost").retry(RetryPolicy::never()).build().unwrap();
        let error = untrusting.auth().get_me(pb::GetMeRequest {}).await.unwrap_err();
        assert_eq!((error.origin, error.code), (ErrorOrigin::Transport, ErrorCode::ServiceUnavailable), "{error}");
    }

    /// A server that never answers: the call ends at its deadline with the id it was sent under.
    async fn a_call_ends_at_its_deadline(app: TestApp) {
        let proxy = FaultProxy::start(app.addr).await;
        proxy.stall();
        let client = client_of(proxy.url());
        let error = client
            .flight()
            .get_flight(pb::GetFlightRequest { flight_id: uuid::Uuid::new_v4().to_string() })
            .correlation_id("sdk-deadline")
            .timeout(Duration::from_millis(300))
            .await
            .unwrap_err();
        assert_eq!((error.code, error.origin), (ErrorCode::DeadlineExceeded, ErrorOrigin::Client));
        assert_eq!(error.correlation_id, "sdk-deadline");
    }

    /// A read repeated after RATE_LIMITED waits the server's RetryInfo delay, then succeeds.
    async fn rate_limited_reads_are_repeated_after_the_servers_delay(
        app: TestApp,
        settings = [("AEROBOOK_RATE_LIMIT_READ", "2/1")]
    ) {
        let client = client(&app);
        sign_up(&client).await;
        let started = std::time::Instant::now();
        for _ in 0..4 {
            client.auth().get_me(pb::GetMeRequest {}).await.expect("repeated until admitted");
        }
        // Two calls fit the bucket; the other two each waited for a token (half a second apiece).
        assert!(started.elapsed() >= Duration::from_millis(900), "waited {:?}", started.elapsed());
    }

    /// The error codes the server produces with its default provider, decoded by the SDK with the
    /// correlation id the server logged the call under (the provider codes and the rest follow below).
    async fn every_server_error_code_decodes_with_its_correlation_id(
        app: TestApp,
        settings = [("AEROBOOK_MAX_HOLDS_PER_USER", "2"), ("AEROBOOK_RATE_LIMIT_SEARCH", "3/60")]
    ) {
        let customer = impatient(&app);
        let signed_in = sign_up(&customer).await;
        let operator = impatient(&app);
        operator.set_tokens(Some(bare_tokens(app.bearer(Role::Operator))));
        let flight = flight_with_economy(&app, 2, "AB").await;
        let mut seen = Vec::new();
        let mut expect = |code: ErrorCode, result: Result<(), ApiError>| seen.push((code, result.expect_err("fails")));

        let bad_search = pb::SearchFlightsRequest { origin: "R1".into(), ..Default::default() };
        expect(ErrorCode::ValidationError, impatient(&app).flight().search_flights(bad_search).await.map(drop));
        expect(ErrorCode::Unauthorized, impatient(&app).auth().get_me(pb::GetMeRequest {}).await.map(drop));
        let expired = impatient(&app);
        expired.set_tokens(Some(bare_tokens(expired_access_token(user_id(&signed_in), Role::Customer))));
        expect(ErrorCode::TokenExpired, expired.auth().get_me(pb::GetMeRequest {}).await.map(drop));
        let new_flight = create_flight_request("XY990", "RUH", "JED", 2);
        expect(ErrorCode::Forbidden, customer.flight().create_flight(new_flight).await.map(drop));
        let nobody = pb::GetBookingRequest { booking_id: uuid::Uuid::new_v4().to_string() };
        expect(ErrorCode::NotFound, customer.booking().get_booking(nobody).await.map(drop));

        let search = pb::SearchFlightsRequest {
            origin: "RUH".into(),
            destination: "JED".into(),
            departure_date: riyadh_date(1),
            passengers: 1,
            cabin: pb::CabinClass::Economy.into(),
            ..Default::default()
        };
        // The quota of 3 is shared with the invalid search above: both come from this address.
        let mut searches = Vec::new();
        for _ in 0..3 {
            searches.push(customer.flight().search_flights(search.clone()).await.map(drop));
        }
        assert_eq!(searches.iter().filter(|result| result.is_ok()).count(), 2, "{searches:?}");
        expect(ErrorCode::RateLimited, searches.pop().expect("three searches"));

        let book = |passenger: &str, seats: &[&str]| customer.booking().create_booking(hold(&flight, vec![adult(passenger)], seats));
        let key = format!("sdk-conflict-{}", uuid::Uuid::new_v4());
        let first = book("Layla", &["10A"]).idempotency_key(&key).await.unwrap().into_inner();
        expect(ErrorCode::IdempotencyConflict, book("Omar", &[]).idempotency_key(&key).await.map(drop));
        expect(ErrorCode::SeatsUnavailable, book("Sami", &["10A"]).await.map(drop));
        let second = book("Omar", &["10B"]).await.unwrap().into_inner();
        expect(ErrorCode::MaxPerUserExceeded, book("Sami", &[]).await.map(drop));

        let cancel = |booking: &pb::Booking| {
            customer.booking().cancel_booking(pb::CancelBookingRequest { booking_id: booking.id.clone(), reason: String::new() })
        };
        cancel(&second).await.unwrap();
        expect(ErrorCode::InvalidStateTransition, cancel(&second).await.map(drop));

        let offline = book("Sami", &[]).await.unwrap().into_inner();
        let paid_at_desk = pb::ConfirmBookingRequest { booking_id: offline.id.clone(), note: "paid at the desk".into() };
        operator.booking().confirm_booking(paid_at_desk).await.unwrap();
        // The confirmation's email job, through the SDK's AdminService (RetryJob gets its key from the proto).
        let email_jobs = pb::ListJobsRequest { kind: "SEND_EMAIL".into(), ..Default::default() };
        let listed = operator.admin().list_jobs(email_jobs).await.unwrap().into_inner().jobs;
        assert!(!listed.is_empty() && listed.iter().all(|job| job.kind == "SEND_EMAIL"), "{listed:?}");
        expect(ErrorCode::Forbidden, customer.admin().get_queue_stats(pb::GetQueueStatsRequest {}).await.map(drop));
        let unknown = pb::RetryJobRequest { job_id: uuid::Uuid::now_v7().to_string() };
        expect(ErrorCode::NotFound, operator.admin().retry_job(unknown).await.map(drop));
        let refund = pb::RefundBookingRequest { booking_id: offline.id.clone(), reason: String::new() };
        expect(ErrorCode::PaymentRequired, customer.payment().refund_booking(refund).await.map(drop));

        app.clock.advance(PAST_HOLD_TTL);
        let pay_late = pb::CreatePaymentIntentRequest { booking_id: first.id.clone() };
        expect(ErrorCode::BookingExpired, customer.payment().create_payment_intent(pay_late).await.map(drop));

        app.database().await.execute_unprepared("ALTER TABLE bookings RENAME TO bookings_gone").await.unwrap();
        let broken = pb::GetBookingRequest { booking_id: first.id.clone() };
        expect(ErrorCode::InternalError, customer.booking().get_booking(broken).await.map(drop));

        assert_eq!(seen.len(), 15);
        for (code, error) in &seen {
            assert_decoded(*code, error);
        }
    }
}

stripe_tests! {
    /// The payment provider's failures, decoded; a retryable one is repeated with the same key, so the
    /// provider holds one PaymentIntent.
    async fn provider_errors_decode_and_a_repeat_creates_one_intent(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_PAYMENT_TIMEOUT_MS", "300")]
    ) {
        let customer = impatient(&app);
        sign_up(&customer).await;
        let flight = flight_with_economy(&app, 2, "AB").await;
        let held = customer.booking().create_booking(hold(&flight, vec![adult("Layla")], &[])).await.unwrap();
        let pay = || customer.payment().create_payment_intent(pb::CreatePaymentIntentRequest { booking_id: held.id.clone() });
        let mut seen = Vec::new();

        stripe.misbehave_next(Misbehaviour::ServerError);
        seen.push((ErrorCode::ProviderError, pay().await.unwrap_err()));
        stripe.misbehave_next(Misbehaviour::SlowAnswer(Duration::from_millis(1500)));
        seen.push((ErrorCode::ProviderTimeout, pay().await.unwrap_err()));
        for (code, error) in &seen {
            assert_decoded(*code, error);
            assert!(error.retry_after.is_some(), "{code:?} carries RetryInfo");
        }

        let other = customer.booking().create_booking(hold(&flight, vec![adult("Omar")], &[])).await.unwrap();
        stripe.misbehave_next(Misbehaviour::Decline("insufficient_funds"));
        let declined = customer
            .payment()
            .create_payment_intent(pb::CreatePaymentIntentRequest { booking_id: other.id.clone() })
            .await
            .unwrap_err();
        assert_decoded(ErrorCode::PaymentFailed, &declined);
        assert_eq!(declined.metadata["declineCode"], "insufficient_funds");

        // The patient client repeats PROVIDER_ERROR under the same key.
        let patient = client(&app);
        patient.set_tokens(customer.tokens());
        let third = patient.booking().create_booking(hold(&flight, vec![adult("Sami")], &[])).await.unwrap();
        let intents_before = stripe.intents_created();
        stripe.misbehave_next(Misbehaviour::ServerError);
        let payment = patient
            .payment()
            .create_payment_intent(pb::CreatePaymentIntentRequest { booking_id: third.id.clone() })
            .await
            .expect("repeated past the provider's failure");
        assert!(!payment.replayed(), "the failure was not stored under the key");
        assert_eq!(stripe.intents_created() - intents_before, 1);

        let mut processing = stripe.intent(&payment.provider_reference);
        processing["status"] = "processing".into();
        crate::payments::deliver(&app, &stripe, "payment_intent.processing", processing).await;
        let cancel = pb::CancelBookingRequest { booking_id: third.id.clone(), reason: String::new() };
        let in_flight = customer.booking().cancel_booking(cancel).await.unwrap_err();
        assert_decoded(ErrorCode::PaymentProcessing, &in_flight);
    }
}

backend_tests! {
    /// The server's own deadline: a call stuck behind a database lock ends in DEADLINE_EXCEEDED.
    async fn the_servers_deadline_decodes(app: TestApp, settings = [("AEROBOOK_REQUEST_TIMEOUT_MS", "300")]) {
        let operator = impatient(&app);
        operator.set_tokens(Some(bare_tokens(app.bearer(Role::Operator))));
        let blocker = app.block_writes().await;
        let error = operator.flight().create_flight(create_flight_request("XY991", "RUH", "JED", 2)).await.unwrap_err();
        blocker.rollback().await.unwrap();
        assert_decoded(ErrorCode::DeadlineExceeded, &error);
    }
}

/// A key claimed by a call still running: IDEMPOTENCY_IN_PROGRESS. PostgreSQL only, where a claim waits a
/// bounded time on the row another transaction holds (SQLite has one writer, so the call would wait for the
/// writer and end at the server's deadline instead).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_use_decodes_as_in_progress_on_postgres() {
    let Some(app) = TestApp::on_postgres(&[]).await else { return };
    let customer = impatient(&app);
    let signed_in = sign_up(&customer).await;
    let flight = flight_with_economy(&app, 1, "AB").await;
    let key = format!("sdk-busy-{}", uuid::Uuid::new_v4());
    let db = app.database().await;
    let running = db.begin().await.unwrap();
    running
        .execute_unprepared(&format!(
            "INSERT INTO idempotency_keys (caller_id, key, method, fingerprint, created_at, expires_at) \
             VALUES ('{}', '{key}', '/aerobook.v1.BookingService/CreateBooking', 'running', now(), \
             now() + interval '1 day')",
            user_id(&signed_in)
        ))
        .await
        .unwrap();
    let error = customer
        .booking()
        .create_booking(hold(&flight, vec![adult("Layla")], &[]))
        .idempotency_key(&key)
        .await
        .unwrap_err();
    running.rollback().await.unwrap();
    assert_decoded(ErrorCode::IdempotencyInProgress, &error);
}

/// Tokens made of a bare access token (from a `Bearer ...` header value), nothing to renew it with.
fn bare_tokens(bearer: String) -> Tokens {
    Tokens {
        access_token: bearer.trim_start_matches("Bearer ").to_owned(),
        refresh_token: None,
        access_token_expires_at: None,
    }
}

/// The error contract's table, shared with the TypeScript SDK's suite so both SDKs are held to one
/// description of every code (`client-sdk/testdata/error-contract.json`).
fn contract_row(code: ErrorCode) -> serde_json::Value {
    let table: serde_json::Value = serde_json::from_str(include_str!("../../client-sdk/testdata/error-contract.json"))
        .expect("the contract table is JSON");
    table["codes"][code.as_str_name().trim_start_matches("ERROR_CODE_")].clone()
}

/// The server's error, as the contract table says: its code, the id the SDK sent and the server logged,
/// the gRPC code, the retryable flag with RetryInfo, and the code's metadata.
#[track_caller]
fn assert_decoded(code: ErrorCode, error: &ApiError) {
    assert_eq!((error.code, error.origin), (code, ErrorOrigin::Server), "{error}");
    let sent: uuid::Uuid = error.correlation_id.parse().expect("the SDK's UUIDv7");
    assert_eq!(sent.get_version_num(), 7);
    assert_eq!(error.metadata.get("correlationId"), Some(&error.correlation_id), "the server logged this id");
    let row = contract_row(code);
    assert_eq!(Some(error.status_code as i64), row["grpcCode"].as_i64(), "{error}");
    let retryable = row["retryable"].as_bool().expect("retryable is a flag");
    assert_eq!((error.retryable, error.retry_after.is_some()), (retryable, retryable), "{error}");
    for key in row["metadata"].as_array().expect("metadata keys") {
        let key = key.as_str().expect("a key");
        assert!(error.metadata.contains_key(key), "{error} lacks {key}");
    }
    if code == ErrorCode::ValidationError {
        assert!(error.field_violations.iter().any(|v| v.field == "origin"), "{:?}", error.field_violations);
    }
}

backend_tests! {
    /// `wait_for_pass` reports the place in the queue, joins again after a lost answer (keeping the
    /// place), and returns the pass booking needs.
    async fn the_sdk_waits_for_a_pass_across_a_lost_answer(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let operator = client(&app);
        operator.set_tokens(Some(bare_tokens(app.bearer(Role::Operator))));
        let room = pb::ConfigureWaitingRoomRequest {
            flight_id: flight.id.clone(),
            enabled: true,
            admit_per_minute: 1,
            pass_ttl_seconds: 120,
            opens_at: None,
        };
        operator.waiting_room().configure_waiting_room(room).await.expect("room configured");
        let ahead = client(&app);
        ahead.set_tokens(Some(bare_tokens(app.bearer_for(uuid::Uuid::now_v7(), Role::Customer))));
        let join = pb::JoinWaitingRoomRequest { flight_id: flight.id.clone() };
        assert_eq!(ahead.waiting_room().join_waiting_room(join).await.unwrap().position, 1);

        let proxy = FaultProxy::start(app.addr).await;
        let customer = client_of(proxy.url());
        customer.set_tokens(Some(bare_tokens(app.bearer_for(uuid::Uuid::now_v7(), Role::Customer))));
        proxy.lose_next_answer();
        let mut places = Vec::new();
        let clock = app.clock.clone();
        let pass = customer
            .wait_for_pass(&flight.id, |progress| {
                places.push(progress.position);
                // Two minutes at one a minute admit both callers.
                clock.advance(Duration::from_secs(120));
            })
            .await
            .expect("a pass");
        assert_eq!((places.as_slice(), proxy.answers_lost()), (&[2][..], 1), "one place reported, one join lost");
        assert!(pass.expires_at > std::time::SystemTime::now());
        let booking = pb::CreateBookingRequest { waiting_room_pass: pass.pass, ..hold(&flight, vec![adult("Sara")], &[]) };
        customer.booking().create_booking(booking).await.expect("booked with the pass");

        let unknown = pb::Flight { id: uuid::Uuid::now_v7().to_string(), ..flight };
        let error = customer.wait_for_pass(&unknown.id, |_| {}).await.unwrap_err();
        assert!(matches!(error, WaitForPassError::Api(ref e) if e.code == ErrorCode::NotFound), "{error:?}");
    }
}
