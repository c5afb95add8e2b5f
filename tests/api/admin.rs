//! `AdminService` for operators (roles, validation, listing page by page) and the retention sweeps of the
//! job queue and its neighbours; on SQLite (and PostgreSQL where a test says so).

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, Role, TestApp, idempotency_key, request};
use sea_orm::{ConnectionTrait as _, Statement};
use tonic::Response;

use crate::jobs::{confirmed_booking, operator, statement};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_calls_are_for_operators_and_validate_their_input() {
    let app = TestApp::embedded().await;
    let customer = app.bearer(Role::Customer);
    let stats = request(pb::GetQueueStatsRequest {}, &[("authorization", customer.as_str())]);
    let refused = app.admin().get_queue_stats(stats).await.expect_err("customers may not");
    assert_eq!(ContractError::from_status(&refused).reason, "FORBIDDEN");

    let key = idempotency_key();
    let headers = [("authorization", app.bearer(Role::Operator)), ("idempotency-key", key)];
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let bad = app.admin().retry_job(request(pb::RetryJobRequest { job_id: "nope".into() }, &headers)).await;
    ContractError::from_status(&bad.expect_err("not a uuid")).assert_validation(&["job_id"]);
    let unknown = pb::RetryJobRequest { job_id: uuid::Uuid::now_v7().to_string() };
    let missing = app.admin().retry_job(request(unknown, &headers)).await.expect_err("no such job");
    assert_eq!(ContractError::from_status(&missing).reason, "NOT_FOUND");

    let discard = app.admin().discard_job(request(pb::DiscardJobRequest { job_id: "nope".into() }, &headers)).await;
    ContractError::from_status(&discard.expect_err("not a uuid")).assert_validation(&["job_id"]);
    for state in [pb::JobState::Unspecified, pb::JobState::Done, pb::JobState::Running] {
        let bulk = pb::RetryJobsRequest { state: state.into(), kind: "MINE".into() };
        let refused = app.admin().retry_jobs(request(bulk, &headers)).await.expect_err("invalid");
        ContractError::from_status(&refused).assert_validation(&["state", "kind"]);
    }
    let list = pb::ListJobsRequest { state: 42, kind: "MINE".into(), page_size: 101, page_token: "x".into() };
    let invalid = app.admin().list_jobs(operator(&app, list)).await.expect_err("invalid");
    ContractError::from_status(&invalid).assert_validation(&["state", "kind", "page_size", "page_token"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_newest_first_page_by_page() {
    let app = TestApp::embedded().await;
    for _ in 0..3 {
        confirmed_booking(&app).await;
    }
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let page = pb::ListJobsRequest { state: 0, kind: "SEND_EMAIL".into(), page_size: 2, page_token: token };
        let page = app.admin().list_jobs(operator(&app, page)).await.map(Response::into_inner).expect("page");
        seen.extend(page.jobs.into_iter().map(|job| job.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), 3);
    let mut newest_first = seen.clone();
    newest_first.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, newest_first);
    // Without SMTP configured the embedded server writes .eml files.
    app.run_jobs().await;
    let mail_dir = app.config.data_dir.join("mail");
    let files = std::fs::read_dir(mail_dir).expect("mail directory").count();
    assert_eq!(files, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_sweeps_delete_only_what_is_due() {
    let app = TestApp::embedded().await;
    let day = Duration::from_secs(86_400);
    // A session kept (A) and one ended (B): B's token is revoked.
    let register = pb::RegisterRequest {
        email: format!("r{}@example.com", uuid::Uuid::now_v7().simple()),
        password: "correct horse battery".into(),
        full_name: "Rana Saleh".into(),
    };
    let email = register.email.clone();
    app.auth().register(register).await.expect("registered");
    let session = app.auth().login(pb::LoginRequest { email, password: "correct horse battery".into() }).await;
    let refresh_token = session.expect("signed in").into_inner().refresh_token;
    app.auth().logout(pb::LogoutRequest { refresh_token }).await.expect("signed out");
    // Three keyed calls (flight, hold, confirmation), and a done email job.
    let booking = confirmed_booking(&app).await;
    app.run_jobs().await;
    let db = app.database().await;
    // A change quote, expiring in 10 minutes.
    let now = app.clock.now();
    let quote = statement(
        &db,
        "INSERT INTO change_quotes (id, booking_id, flight_id, new_flight_id, new_cabin, currency_code, \
         fare_difference_minor, change_fee_minor, amount_due_minor, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, 'ECONOMY', 'SAR', 0, 0, 0, $5, $6)",
        vec![
            uuid::Uuid::now_v7().into(),
            booking.id.parse::<uuid::Uuid>().unwrap().into(),
            booking.flight_id.parse::<uuid::Uuid>().unwrap().into(),
            booking.flight_id.parse::<uuid::Uuid>().unwrap().into(),
            now.into(),
            (now + chrono::TimeDelta::minutes(10)).into(),
        ],
    );
    db.execute_raw(quote).await.expect("a quote");
    let received = statement(
        &db,
        "INSERT INTO provider_events (id, event_type, received_at) VALUES ($1, $2, $3)",
        vec!["evt_retention".into(), "payment_intent.succeeded".into(), app.clock.now().into()],
    );
    db.execute_raw(received).await.expect("provider event");

    // The server's own sweeper may wake when the clock moves: what is left is what counts.
    let left = async || {
        let mut counts = Vec::new();
        for table in ["idempotency_keys", "provider_events", "refresh_tokens", "outbox_jobs", "change_quotes"] {
            let sql = format!("SELECT COUNT(*) FROM {table}");
            let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
            counts.push(row.try_get_by_index::<i64>(0).unwrap());
        }
        counts
    };
    assert_eq!(left().await, [3, 1, 2, 1, 1]);
    app.sweep_retention().await;
    assert_eq!(left().await, [3, 1, 1, 1, 1], "only the revoked token goes at once");
    app.clock.advance(day - Duration::from_secs(1_800));
    app.sweep_retention().await;
    assert_eq!(left().await, [3, 1, 1, 1, 1], "a quote stays a day past its expiry");
    app.clock.advance(Duration::from_secs(5_400));
    app.sweep_retention().await;
    assert_eq!(left().await, [0, 1, 1, 1, 0], "keys go after 24 hours, quotes a day past their expiry");
    app.clock.advance(6 * day);
    app.sweep_retention().await;
    assert_eq!(left().await, [0, 1, 1, 0, 0], "done jobs go after 7 days");
    app.clock.advance(23 * day);
    app.sweep_retention().await;
    assert_eq!(left().await, [0, 0, 0, 0, 0], "provider events after 30 days; the kept session's token once expired");
}
