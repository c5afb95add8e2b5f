//! Promises kept across instances: a deployment is several instances behind a load balancer that sends each
//! call, retries included, to any of them. On the embedded backend the second instance shares the SQLite
//! file; on PostgreSQL + Redis it shares both, as replicas do.

use aerobook_server::{Cli, Command, run_admin};
use aerobook_tests::{ContractError, TestApp, backend_tests, idempotency_key};
use clap::Parser as _;
use sea_orm::{ConnectionTrait as _, Statement, TransactionTrait as _};
use tonic::Response;

use std::{collections::BTreeSet, time::Duration};

use futures::future::join_all;

use crate::bookings::{
    Customer, PAST_HOLD_TTL, adult, confirm, counts, economy_available, flight_with_economy, hold, is_replayed, reason,
    tally,
};

/// The holds' time to live (the test servers' default).
const HOLD_TTL: Duration = Duration::from_secs(600);

fn replayed<T>(response: &Response<T>) -> bool {
    response.metadata().get("idempotent-replayed").and_then(|v| v.to_str().ok()) == Some("true")
}

/// `aerobook-server admin check`, as operators run it against the instances' database.
async fn admin_check(app: &TestApp) -> Result<String, aerobook_server::AdminError> {
    let cli = Cli::try_parse_from(["aerobook-server", "admin", "check"]).expect("parsed");
    let Some(Command::Admin(command)) = cli.command else { panic!("parsed as admin") };
    run_admin(&app.config, command).await
}

backend_tests! {
    async fn a_retry_through_another_instance_after_a_sell_out_replays_its_hold(app: TestApp) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 1, "A").await;
        let (sara, omar) = (Customer::new(&app), Customer::new(&app));
        // Sara's tap takes the last seat on the first instance; her answer is lost.
        let key = idempotency_key();
        let tap = || sara.keyed(hold(&flight, vec![adult("Sara")], &[]), &key);
        let held = app.bookings().create_booking(tap()).await.expect("the last seat").into_inner();
        // The second instance learns the sell-out from the database (its sold-out gate remembers it).
        for _ in 0..2 {
            let refused = omar.book(&other, hold(&flight, vec![adult("Omar")], &[])).await.expect_err("sold out");
            assert_eq!(ContractError::from_status(&refused).reason, "SEATS_UNAVAILABLE");
        }
        // Her retry reaches the second instance: it gets her hold, not "sold out".
        let retry = other.bookings().create_booking(tap()).await.expect("her hold, replayed");
        assert!(replayed(&retry));
        assert_eq!(retry.into_inner(), held);
        // A new key is refused at the gate as before.
        let again = sara.book(&other, hold(&flight, vec![adult("Sara")], &[])).await.expect_err("sold out");
        assert_eq!(ContractError::from_status(&again).reason, "SEATS_UNAVAILABLE");
        app.scenario_done("a retry through another instance after a sell-out", 6, 0).await;
    }

    /// A crowd at the second instance's sold-out gate at once: twenty buyers whose holds completed on the
    /// first instance repeat their taps (twice each), forty new buyers tap (twice each, one key per
    /// buyer). The gate's key lookups arriving together are read in shared queries; each answer is still
    /// the key's own: 40 replays of 20 holds, 80 refusals.
    async fn a_crowd_at_the_gate_gets_each_keys_own_answer(app: TestApp) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 2, "ABCDEFGHJK").await;
        let buyers: Vec<(Customer, String)> = (0..60).map(|_| (Customer::new(&app), idempotency_key())).collect();
        let tap = |(buyer, key): &(Customer, String)| buyer.keyed(hold(&flight, vec![adult("Sara")], &[]), key);
        let mut held = Vec::new();
        for buyer in &buyers[..20] {
            held.push(app.bookings().create_booking(tap(buyer)).await.expect("a seat").into_inner());
        }
        let refused = Customer::new(&other).book(&other, hold(&flight, vec![adult("Omar")], &[])).await;
        assert_eq!(ContractError::from_status(&refused.expect_err("sold out")).reason, "SEATS_UNAVAILABLE");
        let crowd = buyers.iter().chain(&buyers).map(|buyer| {
            let mut client = other.bookings();
            let request = tap(buyer);
            async move { client.create_booking(request).await }
        });
        let answers = join_all(crowd).await;
        for (i, answer) in answers.iter().enumerate() {
            let buyer = i % buyers.len();
            match answer {
                Ok(replay) if buyer < 20 => {
                    assert!(replayed(replay));
                    assert_eq!(replay.get_ref(), &held[buyer], "buyer {buyer} gets their own hold");
                }
                Err(status) if buyer >= 20 => {
                    assert_eq!(ContractError::from_status(status).reason, "SEATS_UNAVAILABLE");
                }
                other => panic!("buyer {buyer}: {other:?}"),
            }
        }
        app.scenario_done("a crowd at a sold-out gate, repeats and new taps together", 121, 0).await;
    }

    /// Once a cabin is sold out, its gate knows which keys its holds recorded (successes and stored
    /// refusals alike): any other key is refused from memory, with the keys' table locked (PostgreSQL);
    /// a known key is looked up and gets its own answer, on either instance.
    async fn a_sold_out_gate_refuses_unknown_keys_from_memory_and_replays_known_ones(
        app: TestApp,
        settings = [("AEROBOOK_MAX_HOLDS_PER_USER", "1")]
    ) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 1, "AB").await;
        let (sara, ali, omar) = (Customer::new(&app), Customer::new(&app), Customer::new(&app));
        let [held_key, greedy_key] = [idempotency_key(), idempotency_key()];
        let sara_tap = |key: &str| sara.keyed(hold(&flight, vec![adult("Sara")], &[]), key);
        let held = app.bookings().create_booking(sara_tap(&held_key)).await.expect("a seat").into_inner();
        let greedy = app.bookings().create_booking(sara_tap(&greedy_key)).await.expect_err("one hold each");
        assert_eq!(reason(&greedy), "MAX_PER_USER_EXCEEDED");
        ali.book(&other, hold(&flight, vec![adult("Ali")], &[])).await.expect("the last seat");
        // The database refuses Omar: the second instance's gate closes and reads the cabin's keys.
        let omar_key = idempotency_key();
        let omar_tap = || omar.keyed(hold(&flight, vec![adult("Omar")], &[]), &omar_key);
        assert_eq!(reason(&other.bookings().create_booking(omar_tap()).await.unwrap_err()), "SEATS_UNAVAILABLE");

        let locked = if app.is_postgres() {
            let blocker = app.database().await.begin().await.expect("begin");
            blocker.execute_unprepared("LOCK TABLE idempotency_keys IN ACCESS EXCLUSIVE MODE").await.expect("locked");
            Some(blocker)
        } else {
            None
        };
        let lina = Customer::new(&other);
        let fresh = tokio::time::timeout(Duration::from_secs(5), lina.book(&other, hold(&flight, vec![adult("Lina")], &[])))
            .await
            .expect("a key the gate does not know is refused without reading the keys");
        assert_eq!(reason(&fresh.unwrap_err()), "SEATS_UNAVAILABLE");
        if let Some(blocker) = locked {
            blocker.rollback().await.expect("unlocked");
        }

        for instance in [&app, &other] {
            let retry = instance.bookings().create_booking(sara_tap(&held_key)).await.expect("her hold, replayed");
            assert!(replayed(&retry));
            assert_eq!(retry.into_inner(), held);
            let refusal = instance.bookings().create_booking(sara_tap(&greedy_key)).await.expect_err("her refusal");
            assert_eq!(reason(&refusal), "MAX_PER_USER_EXCEEDED", "her stored refusal, not the gate's");
            let again = instance.bookings().create_booking(omar_tap()).await.expect_err("his refusal");
            assert_eq!(reason(&again), "SEATS_UNAVAILABLE");
        }
        app.scenario_done("a sold-out gate that knows the cabin's keys", 11, 0).await;
    }

    async fn two_instances_sharing_one_database_never_oversell_or_book_twice(app: TestApp) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 10, "ABCDE").await;
        let calls = (0..200).map(|i| {
            let (instance, flight) = (if i % 2 == 0 { &app } else { &other }, &flight);
            async move { Customer::new(instance).book(instance, hold(flight, vec![adult("P")], &[])).await }
        });
        let results = join_all(calls).await;
        assert_eq!(tally(&results), counts(&[("OK", 50), ("SEATS_UNAVAILABLE", 150)]));
        assert_eq!(economy_available(&other, &flight).await, 0);

        let roomy = flight_with_economy(&other, 10, "ABCDE").await;
        let sara = Customer::new(&app);
        let key = idempotency_key();
        let message = hold(&roomy, vec![adult("Sara")], &[]);
        let everywhere = (0..20).map(|i| {
            let mut client = if i % 2 == 0 { app.bookings() } else { other.bookings() };
            let request = sara.keyed(message.clone(), &key);
            async move { client.create_booking(request).await }
        });
        let results = join_all(everywhere).await;
        assert_eq!(results.iter().filter(|r| r.as_ref().is_ok_and(|r| !is_replayed(r))).count(), 1, "executed once");
        let ids: BTreeSet<&str> = results.iter().flatten().map(|r| r.get_ref().id.as_str()).collect();
        assert_eq!(ids.len(), 1);
        for status in results.iter().filter_map(|r| r.as_ref().err()) {
            assert_eq!(reason(status), "IDEMPOTENCY_IN_PROGRESS", "{status:?}");
        }
        assert_eq!(economy_available(&app, &roomy).await, 49);

        // Both sweepers at once: every due hold expires exactly once.
        app.clock.advance(PAST_HOLD_TTL);
        other.clock.advance(PAST_HOLD_TTL);
        let (a, b) = tokio::join!(app.sweep(), other.sweep());
        assert_eq!(a + b, 51);
        assert_eq!(economy_available(&app, &flight).await, 50);
        assert_eq!(economy_available(&other, &roomy).await, 50);
        app.assert_invariants().await;
    }


    async fn instances_whose_clocks_disagree_never_expire_a_confirmed_hold(app: TestApp) {
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 10, "AB").await;
        let mut holds = Vec::new();
        for _ in 0..20 {
            holds.push(Customer::new(&app).book(&app, hold(&flight, vec![adult("Sara")], &[])).await.expect("held"));
        }
        // The first instance's clock says the holds have two seconds left; the second's, five seconds ahead,
        // that they ran out three seconds ago. Its sweeper and the first's confirmations race.
        app.clock.advance(HOLD_TTL - Duration::from_secs(2));
        other.clock.advance(HOLD_TTL + Duration::from_secs(3));
        let confirmations = join_all(holds.iter().map(|booking| confirm(&app, booking)));
        let (confirmed, swept) = tokio::join!(confirmations, other.sweep());
        for refused in confirmed.iter().filter_map(|answer| answer.as_ref().err()) {
            let reason = ContractError::from_status(refused).reason;
            assert!(["BOOKING_EXPIRED", "BOOKING_CONFLICT"].contains(&reason.as_str()), "{refused:?}");
        }
        let confirmed = confirmed.iter().filter(|answer| answer.is_ok()).count();
        assert_eq!(confirmed + swept, 20, "each hold confirmed or expired, never both");
        assert_eq!(economy_available(&app, &flight).await, i32::try_from(swept).unwrap());
        app.scenario_done("holds confirmed on one instance while another, 5 s ahead, sweeps them", 21, 1).await;
    }

    async fn the_invariant_check_finds_what_breaks_a_promise(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        sara.book(&app, hold(&flight, vec![adult("Sara")], &["10A"])).await.expect("held");
        app.assert_invariants().await;
        let printed = admin_check(&app).await.expect("every invariant holds");
        assert!(printed.contains("ok   no_seat_sold_twice") && printed.ends_with(" checks, 0 violations\n"), "{printed}");
        // What no code path may do: a cabin count that lost a seat, and a seat kept by a cancelled booking.
        let db = app.database().await;
        let cabin = "UPDATE flight_cabins SET seats_available = seats_available - 1 WHERE cabin = 'ECONOMY' \
                     AND seats_available > 0 AND flight_id IN (SELECT flight_id FROM seat_assignments)";
        db.execute_unprepared(cabin).await.expect("cabin count changed");
        db.execute_unprepared("UPDATE bookings SET status = 'CANCELLED', hold_expires_at = NULL").await.expect("booking cancelled by hand");
        let unmark = Statement::from_sql_and_values(
            db.get_database_backend(),
            "UPDATE flight_cabins SET taken_seats = $1",
            [Vec::<u8>::new().into()],
        );
        db.execute_raw(unmark).await.expect("the cabin's taken seats cleared by hand");
        let report = app.invariants().await;
        let failed: Vec<&str> = report.checks.iter().filter(|c| c.violations > 0).map(|c| c.name).collect();
        assert_eq!(failed, ["seats_add_up", "taken_seats_match_assignments", "released_seats_are_free"], "{report}");
        assert!(report.to_string().contains(&format!("flight {}", flight.id)), "{report}");
        assert!(report.to_string().contains(r#"assigned, not marked: ["10A"]"#), "{report}");
        let refused = admin_check(&app).await.expect_err("violations fail the command").to_string();
        assert!(refused.contains("FAIL seats_add_up") && refused.contains("3 violations"), "{refused}");
    }
}
