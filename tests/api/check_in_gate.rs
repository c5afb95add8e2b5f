//! After check-in, on SQLite and PostgreSQL (plus Redis): sequence numbers unique under concurrent check-ins
//! on two instances, the boarding-pass email whose inline barcode reads back as the pass, and departure
//! control: the manifest, and boarding once by the scanned pass.

use std::collections::BTreeSet;

use aerobook_proto::v1 as pb;
use aerobook_tests::{
    Backend, ContractError, Role, TestApp, backend_tests, idempotency_key, proxy::TcpSwitch, request, smtp::SmtpServer,
};
use base64::Engine as _;
use tonic::{Response, Status};

use crate::{
    bookings::adult,
    check_in::{Traveller, asking, check_in, confirmed, flight_in, passport},
    jobs::mail_tests,
};

/// The gate agent: one operator, so a repeated scan with the same key is the same caller's.
fn operator<T>(app: &TestApp, message: T, key: Option<&str>) -> tonic::Request<T> {
    static AGENT: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
    let bearer = app.bearer_for(*AGENT.get_or_init(uuid::Uuid::now_v7), Role::Operator);
    match key {
        Some(key) => request(message, &[("authorization", bearer.as_str()), ("idempotency-key", key)]),
        None => request(message, &[("authorization", bearer.as_str())]),
    }
}

async fn board(
    app: &TestApp,
    flight: &pb::Flight,
    bcbp: &str,
    key: &str,
) -> Result<Response<pb::ManifestEntry>, Status> {
    let scan = pb::BoardPassengerRequest { flight_id: flight.id.clone(), bcbp: bcbp.into() };
    app.check_in().board_passenger(operator(app, scan, Some(key))).await
}

async fn manifest(app: &TestApp, flight: &pb::Flight, page_size: i32, page_token: &str) -> pb::ListPassengersResponse {
    let list = pb::ListPassengersRequest { flight_id: flight.id.clone(), page_size, page_token: page_token.into() };
    app.check_in().list_passengers(operator(app, list, None)).await.expect("the manifest").into_inner()
}

/// The text of every PDF417 barcode among the message's inline PNG images.
fn barcodes_in(message: &str) -> Vec<String> {
    message
        .split("Content-Type: image/png")
        .skip(1)
        .map(|part| {
            let body = part.split("\r\n\r\n").nth(1).expect("a body").split("\r\n--").next().expect("one part");
            let png = base64::engine::general_purpose::STANDARD.decode(body.replace("\r\n", "")).expect("base64");
            let mut reader = png::Decoder::new(std::io::Cursor::new(png)).read_info().expect("a PNG");
            let mut luma = vec![0; reader.output_buffer_size().expect("a size")];
            let frame = reader.next_frame(&mut luma).expect("a frame");
            luma.truncate(frame.buffer_size());
            let format = Some(rxing::BarcodeFormat::PDF_417);
            let read = rxing::helpers::detect_in_luma(luma, frame.width, frame.height, format).expect("a barcode");
            read.getText().to_owned()
        })
        .collect()
}

backend_tests! {
    async fn concurrent_check_ins_on_two_instances_take_each_sequence_number_once(app: TestApp) {
        const BOOKINGS: usize = 8;
        let flight = flight_in(&app, 5, "JED").await;
        let other = app.another_instance().await;
        let mut booked = Vec::new();
        for i in 0..BOOKINGS {
            let traveller = Traveller::new();
            let booking = confirmed(&app, &traveller, &flight, vec![adult(&format!("P{i}"))]).await;
            booked.push((traveller, booking));
        }
        let calls = booked.iter().enumerate().map(|(i, (traveller, booking))| {
            let server = if i % 2 == 0 { &app } else { &other };
            let message = asking(booking, &flight, &[], vec![]);
            async move { check_in(server, traveller, message, &idempotency_key()).await }
        });
        let sequences: BTreeSet<i32> = futures::future::join_all(calls)
            .await
            .into_iter()
            .map(|done| done.expect("checked in").into_inner().boarding_passes[0].sequence_number)
            .collect();
        assert_eq!(sequences, (1..=BOOKINGS as i32).collect(), "each number once, none skipped");
        app.assert_invariants().await;
    }

    async fn the_manifest_lists_every_live_ticket_and_boarding_happens_once(app: TestApp) {
        let (flight, elsewhere) = (flight_in(&app, 5, "DXB").await, flight_in(&app, 5, "JED").await);
        let (sara, omar) = (Traveller::new(), Traveller::new());
        let booking = confirmed(&app, &sara, &flight, vec![adult("Sara"), adult("Maha")]).await;
        confirmed(&app, &omar, &flight, vec![adult("Omar")]).await;
        let documents = vec![passport("A1234567", "2031-01-01")];
        let passes = check_in(&app, &sara, asking(&booking, &flight, &[0], documents), &idempotency_key()).await;
        let pass = passes.expect("checked in").into_inner().boarding_passes.remove(0);

        let first = manifest(&app, &flight, 2, "").await;
        assert_eq!(first.passengers.len(), 2);
        let rest = manifest(&app, &flight, 2, &first.next_page_token).await;
        assert!(rest.next_page_token.is_empty());
        let all: Vec<pb::ManifestEntry> = first.passengers.into_iter().chain(rest.passengers).collect();
        assert_eq!(all.len(), 3);
        let sara_entry = all.iter().find(|entry| entry.ticket_number == pass.ticket_number).expect("Sara listed");
        assert_eq!(
            (sara_entry.passenger_name.as_str(), sara_entry.seat_number.as_str(), sara_entry.booking_reference.as_str()),
            ("Sara Haddad", pass.seat_number.as_str(), booking.reference.as_str())
        );
        assert!(sara_entry.checked_in && sara_entry.documents_present && !sara_entry.boarded);
        assert_eq!(sara_entry.sequence_number, 1);
        assert_eq!(all.iter().filter(|entry| entry.checked_in || entry.documents_present).count(), 1);

        // A pass altered to another sequence number does not match its ticket.
        let altered = format!("{}0002{}", &pass.bcbp[..52], &pass.bcbp[56..]);
        let forged = board(&app, &flight, &altered, &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&forged).assert_validation(&["bcbp"]);
        let key = idempotency_key();
        let boarded = board(&app, &flight, &pass.bcbp, &key).await.expect("boarded").into_inner();
        assert!(boarded.boarded && boarded.ticket_number == pass.ticket_number);
        let replay = board(&app, &flight, &pass.bcbp, &key).await.expect("the same scan, replayed");
        assert_eq!(replay.into_inner(), boarded);
        let again = ContractError::from_status(&board(&app, &flight, &pass.bcbp, &idempotency_key()).await.unwrap_err());
        assert_eq!((again.code, again.reason.as_str()), (tonic::Code::FailedPrecondition, "ALREADY_BOARDED"));
        let wrong_gate = board(&app, &elsewhere, &pass.bcbp, &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&wrong_gate).assert_validation(&["bcbp"]);
        let garbage = board(&app, &flight, "M1NOT A PASS", &idempotency_key()).await.unwrap_err();
        ContractError::from_status(&garbage).assert_validation(&["bcbp"]);

        // A flown flight is no longer changed or refunded.
        let sara_now = sara.now(&app);
        let refund = pb::RefundBookingRequest { booking_id: booking.id.clone(), reason: "too late".into() };
        let refused = app.payments().refund_booking(sara_now.keyed(refund, &idempotency_key())).await.unwrap_err();
        assert_eq!(ContractError::from_status(&refused).reason, "ALREADY_BOARDED");
        let refused = crate::changes::quote(&app, &sara_now, &booking, &flight, &elsewhere).await.unwrap_err();
        assert_eq!(ContractError::from_status(&refused).reason, "ALREADY_BOARDED");

        let after = manifest(&app, &flight, 0, "").await;
        let boarded_now: Vec<_> = after.passengers.iter().filter(|entry| entry.boarded).map(|e| &e.ticket_number).collect();
        assert_eq!(boarded_now, [&pass.ticket_number]);
        let read = sara.now(&app).get(&app, &booking).await.unwrap();
        let ticket = read.tickets.iter().find(|t| t.ticket_number == pass.ticket_number).unwrap();
        assert_eq!(ticket.status(), pb::TicketStatus::Boarded);
        let customer = Traveller::new().now(&app);
        let list = pb::ListPassengersRequest { flight_id: flight.id.clone(), ..Default::default() };
        let forbidden = app.check_in().list_passengers(customer.plain(list)).await.unwrap_err();
        assert_eq!(forbidden.code(), tonic::Code::PermissionDenied, "the manifest is the operators'");
        app.assert_invariants().await;
    }
}

mail_tests! {
    async fn checked_in_travellers_get_their_passes_by_email_with_barcodes_that_read_back(
        app: TestApp, smtp: SmtpServer, _switch: TcpSwitch
    ) {
        let flight = flight_in(&app, 5, "JED").await;
        let sara = Traveller::new();
        let booking = confirmed(&app, &sara, &flight, vec![adult("Sara"), adult("Maha")]).await;
        app.run_jobs().await;
        let confirmation_emails = smtp.messages().len();
        let passes = check_in(&app, &sara, asking(&booking, &flight, &[], vec![]), &idempotency_key()).await;
        let passes = passes.expect("checked in").into_inner().boarding_passes;
        app.run_jobs().await;
        let messages = smtp.messages();
        assert_eq!(messages.len(), confirmation_emails + 1, "one email for the check-in");
        let email = messages.last().unwrap();
        assert!(email.contains(&format!("Subject: Booking {}: your boarding passes", booking.reference)), "{email}");
        assert!(email.contains("multipart/related"), "{email}");
        for pass in &passes {
            assert!(email.contains(&format!("Content-ID: <pass-{}@aerobook>", pass.ticket_number)), "{email}");
        }
        let read: BTreeSet<String> = barcodes_in(email).into_iter().collect();
        assert_eq!(read, passes.iter().map(|pass| pass.bcbp.clone()).collect(), "each barcode is its pass");
    }
}
