//! Jobs and notifications: booking events through the outbox, customers' emails over a real SMTP server
//! (aiosmtpd in its own process), retries with backoff, dead jobs and `AdminService`, abandoned claims,
//! and retention; on SQLite and PostgreSQL (plus Redis).

use std::time::{Duration, Instant};

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    Backend, ContractError, Role, TestApp, idempotency_key, proxy::TcpSwitch, request, smtp::SmtpServer,
};
use chrono::Utc;
use sea_orm::{ConnectionTrait as _, Statement};
use tonic::{Code, Response};

use crate::bookings::{Customer, adult, confirm, flight_with_economy, hold};

/// Past the longest retry delay (30 minutes).
const PAST_ANY_RETRY: Duration = Duration::from_secs(31 * 60);
/// Past a job's lease (30 s).
const PAST_THE_LEASE: Duration = Duration::from_secs(31);

/// Runs each test on the embedded backend and, when configured, on PostgreSQL and Redis, with a fresh
/// SMTP server whose address the test's settings name.
macro_rules! mail_tests {
    ($(async fn $name:ident($app:ident: TestApp, $smtp:ident: SmtpServer, $switch:ident: TcpSwitch) $body:block)*) => {$(
        mod $name {
            use super::*;

            async fn run($app: TestApp, $smtp: SmtpServer, $switch: TcpSwitch) $body

            async fn start(backend: Backend) -> Option<(TestApp, SmtpServer, TcpSwitch)> {
                let smtp = SmtpServer::start().await;
                // The server reaches the SMTP server through a switch, so tests can take mail down.
                let switch = TcpSwitch::start(smtp.addr()).await;
                let url = format!("smtp://{}", switch.addr());
                let settings = [("AEROBOOK_SMTP_URL", url.as_str()), ("AEROBOOK_SMTP_TIMEOUT_MS", "2000")];
                Some((TestApp::spawn(backend, &settings).await?, smtp, switch))
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                let (app, smtp, switch) = start(Backend::Embedded).await.expect("embedded backend");
                run(app, smtp, switch).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn external() {
                if let Some((app, smtp, switch)) = start(Backend::External).await {
                    run(app, smtp, switch).await
                }
            }
        }
    )*};
}

pub(crate) use mail_tests;

pub(crate) async fn confirmed_booking(app: &TestApp) -> pb::Booking {
    let flight = flight_with_economy(app, 2, "AB").await;
    let sara = Customer::new(app);
    let booking = sara.book(app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("held");
    confirm(app, &booking).await.expect("confirmed")
}

pub(crate) fn operator<T>(app: &TestApp, message: T) -> tonic::Request<T> {
    request(message, &[("authorization", &app.bearer_now(Role::Operator))])
}

/// A keyed call of `bearer`'s.
fn keyed<T>(bearer: &str, message: T, key: &str) -> tonic::Request<T> {
    request(message, &[("authorization", bearer), ("idempotency-key", key)])
}

fn replayed<T>(response: &Response<T>) -> bool {
    response.metadata().get("idempotent-replayed").and_then(|v| v.to_str().ok()) == Some("true")
}

/// Fails the emails of `bookings` confirmations until their jobs are dead (18 attempts), mail cut meanwhile.
async fn dead_email_jobs(app: &TestApp, switch: &TcpSwitch, bookings: usize) -> Vec<pb::Job> {
    switch.cut();
    for _ in 0..bookings {
        confirmed_booking(app).await;
    }
    app.run_jobs().await;
    for _ in 1..18 {
        app.clock.advance(PAST_ANY_RETRY);
        app.run_jobs().await;
    }
    let dead = jobs(app, pb::JobState::Dead, "SEND_EMAIL").await;
    assert_eq!(dead.len(), bookings, "{dead:?}");
    dead
}

async fn jobs(app: &TestApp, state: pb::JobState, kind: &str) -> Vec<pb::Job> {
    let list =
        pb::ListJobsRequest { state: state.into(), kind: kind.into(), page_size: 100, page_token: String::new() };
    app.admin().list_jobs(operator(app, list)).await.expect("jobs listed").into_inner().jobs
}

async fn the_email_job(app: &TestApp) -> pb::Job {
    let all = jobs(app, pb::JobState::Unspecified, "SEND_EMAIL").await;
    assert_eq!(all.len(), 1, "one email job: {all:?}");
    all.into_iter().next().expect("one job")
}

async fn stats(app: &TestApp) -> pb::QueueStats {
    app.admin().get_queue_stats(operator(app, pb::GetQueueStatsRequest {})).await.expect("stats").into_inner()
}

/// `sql` (with `$1`, `$2`... placeholders) with `values`, as `db`'s backend spells placeholders.
pub(crate) fn statement(db: &sea_orm::DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Statement {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => {
            (1..=values.len()).fold(sql.to_owned(), |sql, n| sql.replace(&format!("${n}"), "?"))
        }
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Puts the job back as if its worker had claimed it and then died (attempt counted, lease running).
async fn abandon_claim(app: &TestApp, job_id: &str) {
    let lease_until = app.clock.now() + chrono::TimeDelta::seconds(30);
    let db = app.database().await;
    let sql = "UPDATE outbox_jobs SET state = 'running', done_at = NULL, attempts = attempts + 1, locked_until = $1 \
               WHERE id = $2";
    let values = vec![lease_until.into(), uuid::Uuid::parse_str(job_id).expect("uuid").into()];
    assert_eq!(db.execute_raw(statement(&db, sql, values)).await.expect("update").rows_affected(), 1);
}

mail_tests! {
    async fn one_email_per_confirmation_whatever_replays_retries_and_workers_do(
        app: TestApp, smtp: SmtpServer, _switch: TcpSwitch
    ) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let booking = sara.book(&app, hold(&flight, vec![adult("Sara"), adult("Omar")], &["10A", "10B"])).await.unwrap();
        // The operator's confirmation, sent twice with one key: the second is a replay.
        let (bearer, key) = (app.bearer(Role::Operator), idempotency_key());
        let confirm = || {
            let message = pb::ConfirmBookingRequest { booking_id: booking.id.clone(), note: "desk".into() };
            request(message, &[("authorization", bearer.as_str()), ("idempotency-key", key.as_str())])
        };
        let confirmed = app.bookings().confirm_booking(confirm()).await.expect("confirmed").into_inner();
        let replay = app.bookings().confirm_booking(confirm()).await.expect("replayed");
        assert_eq!(replay.metadata().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));

        // Two workers of this instance and a second instance's, all at once.
        let other = app.another_instance().await;
        tokio::join!(app.run_jobs(), app.run_jobs(), other.run_jobs());
        let messages = smtp.messages();
        assert_eq!(messages.len(), 1, "exactly one email: {messages:#?}");
        let email = &messages[0];
        assert!(email.contains(&format!("Subject: Booking {} confirmed", booking.reference)), "{email}");
        assert!(email.contains("To: sara@example.com"), "{email}");
        assert!(email.contains("multipart/alternative"), "{email}");
        assert!(email.contains("Content-Type: text/plain"), "{email}");
        assert!(email.contains("Content-Type: text/html"), "{email}");
        for ticket in &confirmed.tickets {
            assert!(email.contains(&ticket.ticket_number), "the e-tickets are listed: {email}");
        }
        assert_eq!(confirmed.tickets.len(), 2);
        let job = the_email_job(&app).await;
        assert_eq!((job.state(), job.attempts), (pb::JobState::Done, 1));
        let message_id = email.lines().find(|l| l.starts_with("Message-ID: ")).expect("a Message-ID");
        assert!(message_id.ends_with("@aerobook>"), "derived from the event: {message_id}");
        assert!(!job.correlation_id.is_empty());

        // The job runs again (a worker that died after recording the send, say): the record stops a resend.
        abandon_claim(&app, &job.id).await;
        app.clock.advance(PAST_THE_LEASE);
        app.run_jobs().await;
        assert_eq!(smtp.messages().len(), 1, "the send was recorded: no second email");
        assert_eq!(the_email_job(&app).await.state(), pb::JobState::Done);
    }

    async fn cancellation_and_expiry_are_emailed_too_and_holds_are_not(
        app: TestApp, smtp: SmtpServer, _switch: TcpSwitch
    ) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let cancelled = sara.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.unwrap();
        let expiring = sara.book(&app, hold(&flight, vec![adult("Omar")], &["10B"])).await.unwrap();
        app.run_jobs().await;
        assert!(smtp.messages().is_empty(), "a hold is not emailed");
        sara.cancel(&app, &cancelled).await.expect("cancelled");
        // The cancellation woke the background worker: its send finishes before the test clock jumps past
        // its lease (a real clock never does), so no other worker takes the job over mid-send.
        app.run_jobs().await;
        app.clock.advance(crate::bookings::PAST_HOLD_TTL);
        assert_eq!(app.sweep().await, 1);
        app.run_jobs().await;
        let subjects: Vec<String> = smtp
            .messages()
            .iter()
            .filter_map(|m| m.lines().find(|l| l.starts_with("Subject: ")).map(str::to_owned))
            .collect();
        let mut expected = vec![
            format!("Subject: Booking {} cancelled", cancelled.reference),
            format!("Subject: Booking {}: your hold expired", expiring.reference),
        ];
        let mut subjects = subjects;
        subjects.sort();
        expected.sort();
        assert_eq!(subjects, expected);
    }

    async fn a_job_that_fails_twice_then_succeeds_sends_one_email(
        app: TestApp, smtp: SmtpServer, switch: TcpSwitch
    ) {
        switch.cut();
        let booking = confirmed_booking(&app).await;
        app.run_jobs().await;
        let failed = jobs(&app, pb::JobState::Failed, "SEND_EMAIL").await;
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].attempts, 1);
        assert!(!failed[0].last_error.is_empty());
        assert!(failed[0].run_at.as_ref().unwrap().seconds > Utc::now().timestamp(), "retried later");
        assert_eq!(stats(&app).await.failed, 1);

        app.clock.advance(PAST_ANY_RETRY);
        app.run_jobs().await;
        assert_eq!(jobs(&app, pb::JobState::Failed, "SEND_EMAIL").await[0].attempts, 2);
        assert!(smtp.messages().is_empty());

        switch.restore();
        app.clock.advance(PAST_ANY_RETRY);
        app.run_jobs().await;
        let job = the_email_job(&app).await;
        assert_eq!((job.state(), job.attempts), (pb::JobState::Done, 3));
        let messages = smtp.messages();
        assert_eq!(messages.len(), 1);
        assert!(messages[0].contains(&booking.reference));
    }

    async fn a_job_that_always_fails_is_dead_after_its_attempts_and_retry_job_revives_it(
        app: TestApp, smtp: SmtpServer, switch: TcpSwitch
    ) {
        switch.cut();
        confirmed_booking(&app).await;
        app.run_jobs().await;
        for _ in 1..18 {
            app.clock.advance(PAST_ANY_RETRY);
            app.run_jobs().await;
        }
        let dead = jobs(&app, pb::JobState::Dead, "").await;
        assert_eq!(dead.len(), 1, "{dead:?}");
        assert_eq!((dead[0].kind.as_str(), dead[0].attempts), ("SEND_EMAIL", 18));
        assert!(!dead[0].last_error.is_empty());
        let counted = stats(&app).await;
        assert_eq!((counted.queued, counted.running, counted.failed, counted.dead), (0, 0, 0, 1));
        app.clock.advance(PAST_ANY_RETRY);
        app.run_jobs().await;
        assert_eq!(the_email_job(&app).await.state(), pb::JobState::Dead, "a dead job is not retried on its own");

        // An operator fixes mail and retries it; the same key replays the answer.
        switch.restore();
        let (bearer, key) = (app.bearer_now(Role::Operator), idempotency_key());
        let retry = |job_id: &str| {
            let headers = [("authorization", bearer.as_str()), ("idempotency-key", key.as_str())];
            request(pb::RetryJobRequest { job_id: job_id.to_owned() }, &headers)
        };
        let revived = app.admin().retry_job(retry(&dead[0].id)).await.expect("revived").into_inner();
        assert_eq!((revived.state(), revived.attempts), (pb::JobState::Queued, 0));
        let replay = app.admin().retry_job(retry(&dead[0].id)).await.expect("replayed");
        assert_eq!(replay.metadata().get("idempotent-replayed").and_then(|v| v.to_str().ok()), Some("true"));
        assert_eq!(replay.into_inner(), revived);
        app.run_jobs().await;
        assert_eq!(smtp.messages().len(), 1);
        assert_eq!(the_email_job(&app).await.state(), pb::JobState::Done);

        // A done job is not retried.
        let headers = [("authorization", bearer.as_str()), ("idempotency-key", &idempotency_key())];
        let again = request(pb::RetryJobRequest { job_id: dead[0].id.clone() }, &headers);
        let refused = app.admin().retry_job(again).await.expect_err("done");
        let error = ContractError::from_status(&refused);
        assert_eq!((refused.code(), error.reason.as_str()), (Code::FailedPrecondition, "INVALID_STATE_TRANSITION"));
        assert_eq!(error.metadata.get("currentStatus").map(String::as_str), Some("JOB_STATE_DONE"));
    }

    async fn a_discarded_job_is_kept_out_of_the_alert_and_dead_jobs_are_retried_in_bulk(
        app: TestApp, smtp: SmtpServer, switch: TcpSwitch
    ) {
        let dead = dead_email_jobs(&app, &switch, 3).await;
        let operator = app.bearer_now(Role::Operator);

        // One is set aside: kept with its attempts and last error, no longer counted as dead.
        let key = idempotency_key();
        let discard = || keyed(&operator, pb::DiscardJobRequest { job_id: dead[0].id.clone() }, &key);
        let discarded = app.admin().discard_job(discard()).await.expect("discarded").into_inner();
        assert_eq!(
            (discarded.state(), discarded.attempts, discarded.last_error.as_str()),
            (pb::JobState::Discarded, 18, dead[0].last_error.as_str())
        );
        let replay = app.admin().discard_job(discard()).await.expect("replayed");
        assert!(replayed(&replay));
        assert_eq!(replay.into_inner(), discarded);
        let counted = stats(&app).await;
        assert_eq!((counted.dead, counted.discarded), (2, 1));
        assert_eq!(jobs(&app, pb::JobState::Discarded, "").await, std::slice::from_ref(&discarded));
        let again = pb::DiscardJobRequest { job_id: dead[0].id.clone() };
        let refused = app.admin().discard_job(keyed(&operator, again, &idempotency_key())).await.expect_err("twice");
        let error = ContractError::from_status(&refused);
        assert_eq!(error.reason, "INVALID_STATE_TRANSITION");
        assert_eq!(error.metadata.get("currentStatus").map(String::as_str), Some("JOB_STATE_DISCARDED"));

        // Mail is back: every dead email job runs again in one call; the discarded one stays aside.
        switch.restore();
        let key = idempotency_key();
        let bulk = |state: pb::JobState, key: &str| {
            keyed(&operator, pb::RetryJobsRequest { state: state.into(), kind: "SEND_EMAIL".into() }, key)
        };
        let retried = app.admin().retry_jobs(bulk(pb::JobState::Dead, &key)).await.expect("retried");
        assert_eq!(retried.get_ref().retried, 2);
        let replay = app.admin().retry_jobs(bulk(pb::JobState::Dead, &key)).await.expect("replayed");
        assert!(replayed(&replay));
        assert_eq!(replay.get_ref().retried, 2);
        app.run_jobs().await;
        assert_eq!(smtp.messages().len(), 2);
        let counted = stats(&app).await;
        assert_eq!((counted.queued, counted.failed, counted.dead, counted.discarded), (0, 0, 0, 1));
        assert_eq!(jobs(&app, pb::JobState::Discarded, "").await.len(), 1, "kept for the audit");

        // A discarded job can still be brought back.
        let revived = app.admin().retry_jobs(bulk(pb::JobState::Discarded, &idempotency_key())).await.expect("revived");
        assert_eq!(revived.get_ref().retried, 1);
        app.run_jobs().await;
        assert_eq!(smtp.messages().len(), 3);
        assert_eq!(stats(&app).await.discarded, 0);
    }

    async fn a_claim_whose_worker_died_runs_again_after_its_lease(
        app: TestApp, smtp: SmtpServer, switch: TcpSwitch
    ) {
        switch.cut();
        confirmed_booking(&app).await;
        app.run_jobs().await;
        let job = the_email_job(&app).await;
        // A worker claims it and dies: nobody else may run it while the lease lasts.
        abandon_claim(&app, &job.id).await;
        assert_eq!(the_email_job(&app).await.state(), pb::JobState::Running);
        assert_eq!(stats(&app).await.running, 1);
        switch.restore();
        app.clock.advance(PAST_THE_LEASE);
        assert_eq!(the_email_job(&app).await.state(), pb::JobState::Queued, "the lease passed: queued again");
        app.run_jobs().await;
        let job = the_email_job(&app).await;
        assert_eq!((job.state(), job.attempts), (pb::JobState::Done, 3));
        assert_eq!(smtp.messages().len(), 1);
    }

    async fn draining_waits_for_a_job_queued_after_it_read_the_clock(
        app: TestApp, smtp: SmtpServer, _switch: TcpSwitch
    ) {
        // Draining the queue waits for a job queued with a time a little ahead of the drain's reading of
        // the clock, as a job written by another job is when the drain waited for a connection meanwhile.
        confirmed_booking(&app).await;
        app.run_jobs().await;
        let job = the_email_job(&app).await;
        let db = app.database().await;
        let sql = "UPDATE outbox_jobs SET state = 'queued', done_at = NULL, available_at = $1 WHERE id = $2";
        let ahead = app.clock.now() + chrono::TimeDelta::milliseconds(300);
        let values = vec![ahead.into(), uuid::Uuid::parse_str(&job.id).expect("uuid").into()];
        assert_eq!(db.execute_raw(statement(&db, sql, values)).await.expect("update").rows_affected(), 1);
        app.run_jobs().await;
        let job = the_email_job(&app).await;
        assert_eq!((job.state(), job.attempts), (pb::JobState::Done, 2));
        assert_eq!(smtp.messages().len(), 1, "the rerun finds the email sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_hold_leaves_no_event_and_no_job() {
    let app = TestApp::embedded().await;
    let flight = flight_with_economy(&app, 1, "A").await;
    let (sara, omar) = (Customer::new(&app), Customer::new(&app));
    let held = sara.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.unwrap();
    // Omar's hold finds the seat taken when its booking is inserted: nothing of it stays.
    omar.book(&app, hold(&flight, vec![adult("Omar")], &["10A"])).await.expect_err("seat taken");
    sara.cancel(&app, &held).await.expect("cancelled");
    let db = app.database().await;
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db.query_one_raw(Statement::from_string(db.get_database_backend(), sql)).await.unwrap().unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(count("SELECT COUNT(*) FROM booking_history").await, 2, "Sara's hold and cancellation only");
    assert_eq!(count("SELECT COUNT(*) FROM bookings").await, 1);
    assert_eq!(count("SELECT COUNT(*) FROM outbox_jobs").await, 1, "one email job: the cancellation's");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopping_server_lets_a_job_in_the_middle_of_a_send_finish() {
    let mut smtp = SmtpServer::slow(Duration::from_millis(1_000)).await;
    let url = smtp.url();
    let mut app = TestApp::spawn(Backend::Embedded, &[("AEROBOOK_SMTP_URL", &url)]).await.expect("embedded");
    confirmed_booking(&app).await;
    // The server's own worker is sending the confirmation (the SMTP server takes a second over it).
    smtp.receiving().await;
    app.trigger_shutdown();
    app.stopped().await.expect("stopped");
    assert_eq!(smtp.messages().len(), 1);
    let db = app.database().await;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT (SELECT COUNT(*) FROM sent_emails), (SELECT COUNT(*) FROM outbox_jobs WHERE state = 'done')",
        ))
        .await
        .unwrap()
        .unwrap();
    let (sent, done): (i64, i64) = (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap());
    assert_eq!((sent, done), (1, 1), "the send was recorded and the job completed before the server stopped");
}

/// Booking events wake this instance's outbox worker: with a minute between polls, the cancellation's
/// email still goes out at once.
async fn a_cancellation_is_emailed_at_once(backend: Backend) {
    let mut smtp = SmtpServer::start().await;
    let url = smtp.url();
    let settings = [("AEROBOOK_SMTP_URL", url.as_str()), ("AEROBOOK_JOB_POLL_INTERVAL_MS", "60000")];
    let Some(app) = TestApp::spawn(backend, &settings).await else { return };
    let flight = flight_with_economy(&app, 2, "AB").await;
    let sara = Customer::new(&app);
    let booking = sara.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("held");
    sara.cancel(&app, &booking).await.expect("cancelled");
    let answered = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), smtp.accepted()).await.expect("emailed long before the next poll");
    let latency = answered.elapsed();
    assert!(latency < Duration::from_millis(200), "the email went out {latency:?} after the cancellation");
    assert!(smtp.messages()[0].contains(&format!("Subject: Booking {} cancelled", booking.reference)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_is_emailed_at_once_embedded() {
    a_cancellation_is_emailed_at_once(Backend::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancellation_is_emailed_at_once_external() {
    a_cancellation_is_emailed_at_once(Backend::External).await;
}
