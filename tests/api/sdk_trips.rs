//! Trips and changes through the Rust SDK (`aerobook-sdk`) against the real server: a trip held and paid
//! once, a quote priced by the server, and a change that makes the booking cheaper refunded by exactly the
//! difference, its repeat with the same idempotency key answered from the first. On SQLite and on
//! PostgreSQL + Redis.

use aerobook_sdk::{Client, proto as pb};
use aerobook_tests::backend_tests;

use crate::{bookings::adult, changes::flight};

fn segment(flight: &pb::Flight) -> pb::SegmentRequest {
    pb::SegmentRequest { flight_id: flight.id.clone(), cabin: pb::CabinClass::Economy.into(), seat_numbers: Vec::new() }
}

backend_tests! {
    async fn a_trip_is_paid_once_and_a_cheaper_change_refunds_the_difference(app: TestApp) {
        let client = Client::builder(format!("http://{}", app.addr)).build().expect("valid endpoint");
        let registration = pb::RegisterRequest {
            email: format!("sdk-trip-{}@example.com", uuid::Uuid::new_v4().simple()),
            password: "correct horse battery staple".into(),
            full_name: "Sara Ahmed".into(),
        };
        client.auth().register(registration).await.expect("registered");
        let (out, back) = (flight(&app, 2, 2, 40_000, 2_000).await, flight(&app, 5, 2, 40_000, 2_000).await);
        let cheaper = flight(&app, 6, 2, 30_000, 0).await;
        let request = pb::CreateBookingRequest {
            passengers: vec![adult("Sara")],
            contact_email: "sara@example.com".into(),
            segments: vec![segment(&out), segment(&back)],
            ..Default::default()
        };
        let trip = client.booking().create_booking(request).await.expect("held").into_inner();
        assert_eq!(trip.total_price.as_ref().map(|m| m.amount_minor), Some(80_000));
        let paying = client.payment().create_payment_intent(pb::CreatePaymentIntentRequest { booking_id: trip.id.clone() });
        assert_eq!(paying.await.expect("paying").into_inner().amount, trip.total_price);
        app.settle_payments().await;

        let quote = pb::QuoteChangeRequest {
            booking_id: trip.id.clone(),
            flight_id: back.id.clone(),
            new_flight_id: cheaper.id.clone(),
            new_cabin: pb::CabinClass::Economy.into(),
        };
        let quote = client.booking().quote_change(quote).await.expect("quoted").into_inner();
        assert_eq!(quote.amount_due.as_ref().map(|m| m.amount_minor), Some(-8_000), "100.00 back, less the 20.00 fee");
        let change = pb::ChangeFlightRequest { booking_id: trip.id.clone(), quote_id: quote.quote_id.clone() };
        let key = format!("sdk-change-{}", uuid::Uuid::new_v4());
        let changed = client.booking().change_flight(change.clone()).idempotency_key(key.clone()).await;
        let changed = changed.expect("changed").into_inner();
        let again = client.booking().change_flight(change).idempotency_key(key).await.expect("answered again");
        assert_eq!(again.into_inner(), changed, "the repeat is the first answer");
        assert_eq!(changed.segments[1].flight_id, cheaper.id);
        assert_eq!(changed.total_price.as_ref().map(|m| m.amount_minor), Some(72_000));
        app.run_jobs().await;
        app.settle_payments().await;
        let payment = client.payment().get_payment(pb::GetPaymentRequest { booking_id: trip.id.clone() }).await;
        let payment = payment.expect("read").into_inner();
        assert_eq!(payment.status(), pb::PaymentStatus::Succeeded);
        assert_eq!(payment.amount_refunded.map(|m| m.amount_minor), Some(8_000), "exactly the difference, once");
        app.assert_invariants().await;
    }
}
