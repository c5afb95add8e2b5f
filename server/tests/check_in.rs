//! Check-in through the server binary, as operators run it: travel documents are personal data, so none
//! of a passenger's document reaches a log line (at debug level), an exported span, or an error message,
//! while the check-in and the boarding show in the per-flight metrics.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, check_in_service_client::CheckInServiceClient,
    flight_service_client::FlightServiceClient,
};
use aerobook_server::Role;
use support::{
    Server, http_get, new_token, one_seat_hold,
    otlp::{Receiver, names},
};
use tonic::Request;

fn call<T>(message: T, token: &str, key: Option<&str>) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {token}").parse().expect("header"));
    if let Some(key) = key {
        request.metadata_mut().insert("idempotency-key", key.parse().expect("header"));
    }
    request
}

fn key() -> String {
    format!("check-in-test-{}", uuid::Uuid::now_v7())
}

/// A flight from Riyadh to Dubai leaving in five hours, so its check-in is open.
fn dubai_flight() -> pb::CreateFlightRequest {
    let departs = chrono::Utc::now() + chrono::Duration::hours(5);
    let seconds = departs.timestamp() - departs.timestamp() % 60;
    pb::CreateFlightRequest {
        flight_number: "PD777".into(),
        origin: "RUH".into(),
        destination: "DXB".into(),
        departs_at: Some(prost_types::Timestamp { seconds, nanos: 0 }),
        arrives_at: Some(prost_types::Timestamp { seconds: seconds + 7_200, nanos: 0 }),
        cabins: vec![pb::CabinConfig {
            cabin: pb::CabinClass::Economy.into(),
            first_row: 10,
            rows: 1,
            seat_letters: "AB".into(),
            price: Some(pb::Money { currency_code: "SAR".into(), amount_minor: 90_000 }),
            ..Default::default()
        }],
    }
}

#[tokio::test]
async fn documents_reach_no_log_span_or_error_and_check_ins_and_boardings_are_counted_per_flight() {
    let mut receiver = Receiver::start().await;
    let server = Server::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ("AEROBOOK_METRICS_ADDR", "127.0.0.1:0"),
    ])
    .await;
    let channel = server.channel().await;
    let (operator, customer) = (new_token(Role::Operator), new_token(Role::Customer));
    let flight = FlightServiceClient::new(channel.clone())
        .create_flight(call(dubai_flight(), &operator, Some(&key())))
        .await
        .expect("flight created")
        .into_inner();
    let mut bookings = BookingServiceClient::new(channel.clone());
    let held = bookings.create_booking(call(one_seat_hold(&flight.id), &customer, Some(&key()))).await.expect("held");
    let confirm = pb::ConfirmBookingRequest { booking_id: held.into_inner().id, note: "desk".into() };
    let booking =
        bookings.confirm_booking(call(confirm, &operator, Some(&key()))).await.expect("confirmed").into_inner();

    let (number, bad_number, expiry) = ("K5550123", "Q99887766554433", "2031-02-03");
    let document = |number: &str| pb::TravelDocument {
        r#type: pb::TravelDocumentType::Passport.into(),
        number: number.into(),
        issuing_country: "SA".into(),
        nationality: "SA".into(),
        expires_on: expiry.into(),
    };
    let asking = |number: &str| pb::CheckInRequest {
        booking_id: booking.id.clone(),
        flight_id: flight.id.clone(),
        documents: vec![document(number)],
        ..Default::default()
    };
    let mut check_in = CheckInServiceClient::new(channel.clone());
    let refused = check_in.check_in(call(asking(bad_number), &customer, Some(&key()))).await.expect_err("a bad number");
    let passes =
        check_in.check_in(call(asking(number), &customer, Some(&key()))).await.expect("checked in").into_inner();
    let scan = pb::BoardPassengerRequest { flight_id: flight.id.clone(), bcbp: passes.boarding_passes[0].bcbp.clone() };
    check_in.board_passenger(call(scan, &operator, Some(&key()))).await.expect("boarded");
    let get = pb::GetBookingRequest { booking_id: booking.id.clone() };
    let read = bookings.get_booking(call(get, &customer, None)).await.expect("read").into_inner();
    assert_eq!(read.passengers[0].document.as_ref().map(|d| d.number.as_str()), Some(number), "its owner sees it");

    let (status, metrics) = http_get(server.metrics_addr.expect("metrics address"), "/metrics").await;
    assert_eq!(status, 200);
    let counted = |name: &str| {
        metrics.lines().any(|line| line.starts_with(name) && line.contains(&flight.id) && line.ends_with(" 1"))
    };
    assert!(counted("aerobook_check_ins_total{") && counted("aerobook_boardings_total{"), "{metrics}");

    let spans = receiver.spans_until(|spans| names(spans).contains(&"aerobook.v1.CheckInService/BoardPassenger")).await;
    let exported = format!("{spans:?}");
    assert!(exported.contains("aerobook.v1.CheckInService/CheckIn"), "the check-in was traced at all");
    let logs = server.stop().await.join("\n");
    assert!(logs.contains("CheckIn"), "the check-in was logged at all");
    let error = format!("{refused:?}");
    for personal in [number, bad_number, expiry] {
        assert!(!exported.contains(personal), "a document reached a span: {personal}");
        assert!(!logs.contains(personal), "a document reached the log: {personal}");
        assert!(!error.contains(personal), "a document reached an error: {personal}");
    }
}
