//! Faults injected under load, through a cluster of instances on PostgreSQL + Redis: the database or Redis
//! cut mid-sale behind a TCP switch, a storm of duplicated, shuffled webhook deliveries, a slow and
//! failing Stripe under a crowd of payments, and mail down for twenty minutes (also on SQLite). The buyers are Rust SDK clients that repeat failed calls with the same
//! idempotency key; each scenario ends with the invariant check. They need PostgreSQL (and Redis for the
//! Redis scenario): skipped without them, except under CI.

use std::{collections::BTreeSet, net::SocketAddr, time::Duration};

use aerobook_sdk::{ErrorCode, RetryPolicy, proto as pb};
use aerobook_server::stripe_wire as wire;
use aerobook_tests::{
    Backend, ContractError, Role, TestApp,
    cluster::{Cluster, INSTANCES},
    pg_ha::PgPair,
    proxy::TcpSwitch,
    smtp::SmtpServer,
    stripe::Misbehaviour,
};
use futures::future::join_all;
use tokio::sync::mpsc;

use crate::{
    bookings::{Customer, adult, confirm, economy_available, flight_with_economy, hold},
    payments::{count, pay},
};

/// How long an outage lasts: longer than a call's first few repeats, shorter than a buyer's patience.
const OUTAGE: Duration = Duration::from_secs(2);

/// Buyers repeat for up to about 10 s: they outlast the outage.
fn patient() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 30,
        initial_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
    }
}

/// `url` with its host and port replaced by a switch in front of them, and the switch.
async fn behind_a_switch(url: &str) -> (String, TcpSwitch) {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (credentials, rest) = rest.rsplit_once('@').map_or(("", rest), |(c, r)| (c, r));
    let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
    let target: SocketAddr = tokio::net::lookup_host(authority).await.expect("host").next().expect("an address");
    let switch = TcpSwitch::start(target).await;
    let at = if credentials.is_empty() { String::new() } else { format!("{credentials}@") };
    (format!("{scheme}://{at}{}/{path}", switch.addr()), switch)
}

fn required(variable: &str) -> Option<String> {
    let value = std::env::var(variable).ok();
    if value.is_none() {
        assert!(std::env::var_os("CI").is_none(), "CI must set {variable}");
        eprintln!("skipped: {variable} is not set");
    }
    value
}

/// Runs `buyers` buyers at once, each holding one seat with a key of its own, and cuts `switch` for
/// [`OUTAGE`] once `before_cut` of them have their answer. Returns each buyer's answer.
async fn sale_with_an_outage(
    cluster: &Cluster,
    flight: &pb::Flight,
    buyers: usize,
    before_cut: usize,
    switch: &TcpSwitch,
) -> Vec<Result<pb::Booking, aerobook_sdk::ApiError>> {
    let outage = async || {
        switch.cut();
        tokio::time::sleep(OUTAGE).await;
        switch.restore();
    };
    sale_with_a_fault(cluster, flight, buyers, before_cut, outage).await
}

/// Runs `buyers` buyers at once, each holding one seat with a key of its own, and strikes with `fault`
/// once `before_fault` of them have their answer. Returns each buyer's answer.
async fn sale_with_a_fault(
    cluster: &Cluster,
    flight: &pb::Flight,
    buyers: usize,
    before_fault: usize,
    fault: impl AsyncFnOnce(),
) -> Vec<Result<pb::Booking, aerobook_sdk::ApiError>> {
    let (answered, mut answers) = mpsc::unbounded_channel::<()>();
    let sale = join_all((0..buyers).map(|_| {
        let (client, answered) = (cluster.signed_in_retrying(Role::Customer, patient()), answered.clone());
        async move {
            let answer = client.booking().create_booking(hold(flight, vec![adult("Sara")], &[])).await;
            let _ = answered.send(());
            answer.map(|response| response.into_inner())
        }
    }));
    let outage = async {
        for _ in 0..before_fault {
            answers.recv().await;
        }
        fault().await;
    };
    let (results, ()) = tokio::join!(sale, outage);
    results
}

/// Every answered booking exists once; every seat the cabin lost is one of them. Ends `scenario`.
async fn acknowledged_bookings_exist_once(
    scenario: &str,
    cluster: &Cluster,
    flight: &pb::Flight,
    answers: &[Result<pb::Booking, aerobook_sdk::ApiError>],
    seats: i32,
) {
    let app = cluster.first();
    let booked: BTreeSet<&str> = answers.iter().flatten().map(|booking| booking.id.as_str()).collect();
    assert_eq!(booked.len(), answers.iter().flatten().count(), "no booking answered twice");
    let reader = cluster.signed_in(Role::Operator);
    for id in &booked {
        let read = reader.booking().get_booking(pb::GetBookingRequest { booking_id: (*id).to_owned() }).await;
        assert_eq!(read.expect("an acknowledged booking exists").into_inner().status(), pb::BookingStatus::Held);
    }
    let sold = seats - economy_available(app, flight).await;
    assert_eq!(usize::try_from(sold).unwrap(), booked.len(), "every seat taken belongs to an acknowledged booking");
    app.scenario_done(scenario, answers.len(), 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_mid_sale_loses_no_acknowledged_booking() {
    let Some(database_url) = required("DATABASE_URL").filter(|url| url.starts_with("postgres")) else { return };
    let (via_switch, switch) = behind_a_switch(&database_url).await;
    let settings = [("DATABASE_URL", via_switch.as_str()), ("AEROBOOK_HEALTH_PROBE_INTERVAL_MS", "100")];
    let Some(cluster) = Cluster::start_with(Backend::External, 2, &settings).await else { return };
    let flight = flight_with_economy(cluster.first(), 10, "ABC").await;
    let answers = sale_with_an_outage(&cluster, &flight, 24, 6, &switch).await;
    for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert!(refused.retryable, "only a retryable failure may end a buyer's patience: {refused:?}");
    }
    assert!(answers.iter().filter(|answer| answer.is_ok()).count() >= 6, "buyers before and after the outage");
    let scenario = "PostgreSQL cut for 2 s mid-sale, 2 instances";
    acknowledged_bookings_exist_once(scenario, &cluster, &flight, &answers, 30).await;

    // While the database is away, calls are answered at once, and retryably.
    switch.cut();
    let impatient = cluster.signed_in_retrying(Role::Customer, RetryPolicy::never());
    let started = std::time::Instant::now();
    let refused = impatient.booking().create_booking(hold(&flight, vec![adult("Omar")], &[])).await.expect_err("down");
    assert_eq!(refused.code, ErrorCode::ServiceUnavailable, "{refused:?}");
    assert!(refused.retryable && started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    switch.restore();
}

/// A PostgreSQL primary with a synchronous standby fails over mid-sale: the primary dies, the standby is
/// promoted, and the address the instances use (a switch standing for a virtual IP or a proxy's read-write
/// endpoint) moves to it. Calls in the gap fail retryably, the buyers' SDKs repeat them with their keys, and
/// every acknowledged booking is on the new primary once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_primary_failover_mid_sale_loses_no_acknowledged_booking() {
    let Some(_) = required("DATABASE_URL") else { return };
    let Some(pair) = PgPair::start() else { return };
    pair.replicate_synchronously();
    let switch = TcpSwitch::start(pair.primary_addr()).await;
    let url = format!("postgres://postgres@{}/postgres", switch.addr());
    let settings = [("DATABASE_URL", url.as_str()), ("AEROBOOK_HEALTH_PROBE_INTERVAL_MS", "100")];
    let Some(cluster) = Cluster::start_with(Backend::External, 2, &settings).await else { return };
    let flight = flight_with_economy(cluster.first(), 10, "ABC").await;
    let failover = async || {
        switch.cut();
        pair.fail_over();
        switch.retarget(pair.standby_addr());
        switch.restore();
    };
    let answers = sale_with_a_fault(&cluster, &flight, 24, 6, failover).await;
    for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert!(refused.retryable, "only a retryable failure may end a buyer's patience: {refused:?}");
    }
    assert!(answers.iter().filter(|answer| answer.is_ok()).count() >= 6, "buyers before and after the failover");
    let scenario = "PostgreSQL primary failed over to its synchronous standby mid-sale, 2 instances";
    acknowledged_bookings_exist_once(scenario, &cluster, &flight, &answers, 30).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_mid_sale_keeps_selling_from_the_database() {
    let (Some(_), Some(redis_url)) = (required("DATABASE_URL"), required("REDIS_URL")) else { return };
    let (via_switch, switch) = behind_a_switch(&redis_url).await;
    let settings = [("REDIS_URL", via_switch.trim_end_matches('/'))];
    let Some(cluster) = Cluster::start_with(Backend::External, 2, &settings).await else { return };
    let flight = flight_with_economy(cluster.first(), 5, "AB").await;
    let started = std::time::Instant::now();
    let answers = sale_with_an_outage(&cluster, &flight, 30, 5, &switch).await;
    for refused in answers.iter().filter_map(|answer| answer.as_ref().err()) {
        assert_eq!(refused.code, ErrorCode::SeatsUnavailable, "Redis is never needed to answer: {refused:?}");
    }
    assert_eq!(answers.iter().filter(|answer| answer.is_ok()).count(), 10, "every seat sold once");
    assert!(started.elapsed() < OUTAGE + Duration::from_secs(8), "no call waited on Redis: {:?}", started.elapsed());
    let scenario = "Redis cut mid-sale, 2 instances";
    acknowledged_bookings_exist_once(scenario, &cluster, &flight, &answers, 10).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_redis_costs_no_call_a_wait_once_the_breaker_opens() {
    let (Some(_), Some(redis_url)) = (required("DATABASE_URL"), required("REDIS_URL")) else { return };
    let (via_switch, switch) = behind_a_switch(&redis_url).await;
    let settings = [("REDIS_URL", via_switch.trim_end_matches('/'))];
    let Some(cluster) = Cluster::start_with(Backend::External, 2, &settings).await else { return };
    let flight = flight_with_economy(cluster.first(), 10, "AB").await;
    let buyers: Vec<_> = (0..21).map(|_| cluster.signed_in_retrying(Role::Customer, patient())).collect();
    // Redis accepts and never answers. Each instance's probe opens its breaker within three unanswered
    // pings (at most 3 x (250 + 250) ms): the bound of the design under test, not a synchronisation.
    switch.black_hole();
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let started = std::time::Instant::now();
    let mut answers = Vec::new();
    for buyer in &buyers[..20] {
        let answer = buyer.booking().create_booking(hold(&flight, vec![adult("Sara")], &[])).await;
        answers.push(answer.map(|response| response.into_inner()));
    }
    let took = started.elapsed();
    // Without the breaker each hold waits out at least one 250 ms Redis command: 20 take over 5 s.
    assert!(took < Duration::from_millis(2_500), "20 holds took {took:?} with Redis black-holed");
    let failed: Vec<_> = answers.iter().filter_map(|answer| answer.as_ref().err()).collect();
    assert!(failed.is_empty(), "every seat sold from the database: {failed:?}");
    switch.restore();
    let after = buyers[20].booking().create_booking(hold(&flight, vec![adult("Omar")], &[])).await;
    assert_eq!(after.expect_err("sold out").code, ErrorCode::SeatsUnavailable);
    let scenario = "Redis black-holed (accepts, never answers), 2 instances";
    acknowledged_bookings_exist_once(scenario, &cluster, &flight, &answers, 20).await;
}

aerobook_tests::stripe_tests! {
    /// A thousand signed deliveries for a hundred payments, each event ten times over, shuffled and spread
    /// over two instances: every payment applied once, every booking confirmed once, one email each.
    async fn a_webhook_storm_applies_each_event_once(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_RATE_LIMIT_WEBHOOK", "100000/60")]
    ) {
        let other = app.another_instance().await;
        let mut paid = Vec::new();
        for rows in [10, 10] {
            let flight = flight_with_economy(&app, rows, "ABCDE").await;
            for _ in 0..50 {
                let customer = Customer::new(&app);
                let booking = customer.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("held");
                let intent = pay(&app, &customer, &booking, &aerobook_tests::idempotency_key()).await.expect("intent");
                paid.push((customer, booking, intent.into_inner().provider_reference));
            }
        }
        let events: Vec<serde_json::Value> =
            paid.iter().map(|(_, _, intent)| wire::event("payment_intent.succeeded", stripe.succeed(intent))).collect();
        let urls = [app.webhook_url(), other.webhook_url()];
        let deliveries: Vec<(&str, &serde_json::Value)> =
            events.iter().flat_map(|event| urls.iter().cycle().take(10).map(move |url| (url.as_str(), event))).collect();
        // A fixed shuffle (a multiplicative walk), so a failure replays the same order.
        let len = deliveries.len();
        let shuffled: Vec<_> = (0..len).map(|i| deliveries[(i * 7_919) % len]).collect();
        for wave in shuffled.chunks(50) {
            let statuses = join_all(wave.iter().map(|(url, event)| stripe.deliver(url, event))).await;
            assert!(statuses.iter().all(|status| *status == http::StatusCode::OK), "{statuses:?}");
        }
        tokio::join!(app.run_jobs(), other.run_jobs());
        for (customer, booking, _) in &paid {
            assert_eq!(customer.get(&app, booking).await.expect("read").status(), pb::BookingStatus::Confirmed);
        }
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM provider_events").await, 100, "each event recorded once");
        assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM outbox_jobs WHERE kind = 'SEND_EMAIL'").await, 100);
        app.scenario_done("1,000 webhook deliveries (100 events x 10), shuffled over 2 instances", len + 200, len - 100).await;
    }
}

aerobook_tests::stripe_tests! {
    /// Stripe slow (past the provider timeout) and failing (500s) under a crowd paying at once through two
    /// instances, each buyer repeating with its key: every payment ends with one PaymentIntent, none twice,
    /// and once the provider's events arrive every booking is confirmed.
    async fn a_slow_and_failing_stripe_under_load_never_charges_twice(
        app: TestApp,
        stripe: StripeTestServer,
        settings = [("AEROBOOK_PAYMENT_TIMEOUT_MS", "300")]
    ) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 6, "AB").await;
        let mut holds = Vec::new();
        for _ in 0..12 {
            let customer = Customer::new(&app);
            let booking = customer.book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("held");
            holds.push((customer, booking));
        }
        for _ in 0..4 {
            stripe.misbehave_next(Misbehaviour::SlowAnswer(Duration::from_millis(1_500)));
            stripe.misbehave_next(Misbehaviour::ServerError);
        }
        let payments = holds.iter().enumerate().map(|(i, (customer, booking))| {
            let instances = [&app, &other];
            async move {
                let key = aerobook_tests::idempotency_key();
                for attempt in 0..50 {
                    match pay(instances[(i + attempt) % 2], customer, booking, &key).await {
                        Ok(payment) => return payment.into_inner(),
                        Err(status) => {
                            let refused = ContractError::from_status(&status);
                            assert!(refused.retryable, "{refused:?}");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                }
                panic!("the payment never went through")
            }
        });
        let payments = join_all(payments).await;
        assert_eq!(stripe.intents_created(), 12, "one PaymentIntent per booking, whatever the provider did");
        for payment in &payments {
            let event = wire::event("payment_intent.succeeded", stripe.succeed(&payment.provider_reference));
            assert_eq!(stripe.deliver(&app.webhook_url(), &event).await, http::StatusCode::OK);
        }
        tokio::join!(app.run_jobs(), other.run_jobs());
        for (customer, booking) in &holds {
            assert_eq!(customer.get(&app, booking).await.expect("read").status(), pb::BookingStatus::Confirmed);
        }
        app.scenario_done("Stripe slow and failing under 12 payments at once, 2 instances", 12 + 12, 8).await;
    }
}

/// Past the longest retry delay of a job (30 minutes).
const PAST_ANY_RETRY: Duration = Duration::from_secs(31 * 60);

/// Mail down for twenty minutes of the servers' time while bookings are confirmed and cancelled through
/// three instances, each instance's worker retrying its emails as the minutes pass; then mail comes back:
/// every event's email is sent once, none lost, none twice, none given up.
async fn mail_down_for_minutes_then_back_sends_every_email_once(backend: Backend) {
    let smtp = SmtpServer::start().await;
    let switch = TcpSwitch::start(smtp.addr()).await;
    let url = format!("smtp://{}", switch.addr());
    let settings = [("AEROBOOK_SMTP_URL", url.as_str()), ("AEROBOOK_SMTP_TIMEOUT_MS", "2000")];
    let Some(cluster) = Cluster::start_with(backend, INSTANCES, &settings).await else { return };
    let flight = flight_with_economy(cluster.first(), 10, "ABC").await;
    switch.cut();
    let mut references = Vec::new();
    for minute in 0..20 {
        if minute < 3 {
            // A wave of ten bookings through every instance: seven confirmed, three cancelled.
            let wave = join_all((0..10).map(|i| {
                let (app, flight) = (&cluster.instances[i % INSTANCES], &flight);
                async move {
                    let customer = Customer::new(app);
                    let booking = customer.book(app, hold(flight, vec![adult("Sara")], &[])).await.expect("held");
                    if i < 7 { confirm(app, &booking).await } else { customer.cancel(app, &booking).await }
                        .expect("a booking event")
                }
            }));
            references.extend(wave.await.into_iter().map(|booking| booking.reference));
        }
        for app in &cluster.instances {
            app.clock.advance(Duration::from_secs(60));
        }
        join_all(cluster.instances.iter().map(TestApp::run_jobs)).await;
    }
    let app = cluster.first();
    let failed_attempts =
        count(app, "SELECT COALESCE(SUM(attempts), 0) AS n FROM outbox_jobs WHERE kind = 'SEND_EMAIL'").await;
    assert!(smtp.messages().is_empty(), "nothing got through while mail was down");
    assert_eq!(
        count(app, "SELECT COUNT(*) AS n FROM outbox_jobs WHERE kind = 'SEND_EMAIL' AND state = 'failed'").await,
        30,
        "none given up"
    );
    assert!(failed_attempts >= 30 * 5, "each email tried again and again: {failed_attempts} attempts");

    switch.restore();
    for app in &cluster.instances {
        app.clock.advance(PAST_ANY_RETRY);
    }
    join_all(cluster.instances.iter().map(TestApp::run_jobs)).await;
    let messages = smtp.messages();
    for reference in &references {
        let about = messages.iter().filter(|message| message.contains(reference.as_str())).count();
        assert_eq!(about, 1, "one email about {reference}");
    }
    assert_eq!(messages.len(), references.len(), "one email per event");
    assert_eq!(
        count(app, "SELECT COUNT(*) AS n FROM outbox_jobs WHERE kind = 'SEND_EMAIL' AND state <> 'done'").await,
        0
    );
    let scenario = "SMTP down for 20 minutes under bookings through 3 instances, then back";
    app.scenario_done(scenario, references.len() * 2, usize::try_from(failed_attempts).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_down_for_minutes_then_back_embedded() {
    mail_down_for_minutes_then_back_sends_every_email_once(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_down_for_minutes_then_back_external() {
    mail_down_for_minutes_then_back_sends_every_email_once(Backend::External).await;
}
