//! A whole booking through the SDK, against a running server:
//!
//! ```text
//! cargo run -p aerobook-server &                       # embedded defaults: demo flights, simulated payments
//! cargo run -p aerobook-sdk --example booking_flow     # or: ... -- https://aerobook.example.com
//! ```
//!
//! Registers a customer, finds tomorrow's first Riyadh -> Jeddah flight, holds two seats, pays, waits for the
//! confirmation, then holds one more seat and cancels it.

use std::time::Duration;

use aerobook_sdk::{ApiError, Client, proto};

#[tokio::main]
async fn main() {
    let endpoint = std::env::args().nth(1).unwrap_or_else(|| "http://127.0.0.1:50051".to_owned());
    if let Err(error) = run(&endpoint).await {
        eprintln!("booking flow failed: {error}");
        std::process::exit(1);
    }
}

async fn run(endpoint: &str) -> Result<(), Box<dyn std::error::Error>> {
    let client = Client::builder(endpoint).build()?;
    let email = format!("demo-{}@example.com", uuid::Uuid::new_v4().simple());
    let signed_in = client
        .auth()
        .register(proto::RegisterRequest {
            email: email.clone(),
            password: "correct horse battery staple".into(),
            full_name: "Layla Haddad".into(),
        })
        .await?;
    println!("registered {email} (correlation id {})", signed_in.correlation_id());

    // The demo schedule is in Riyadh time (UTC+3).
    let tomorrow = (chrono::Utc::now() + chrono::Duration::hours(3) + chrono::Duration::days(1)).format("%Y-%m-%d");
    let found = client
        .flight()
        .search_flights(proto::SearchFlightsRequest {
            origin: "RUH".into(),
            destination: "JED".into(),
            departure_date: tomorrow.to_string(),
            passengers: 2,
            cabin: proto::CabinClass::Economy.into(),
            ..Default::default()
        })
        .await?;
    let flight = found.flights.first().ok_or("no RUH -> JED flight tomorrow; is the server seeding demo data?")?;
    // Local airport times, whatever this machine's time zone.
    let times = aerobook_sdk::local_times(flight)?;
    println!("flight {} {} {} ({} local time)", flight.flight_number, times.departure_date(), times, flight.origin);

    let seat_map = client
        .flight()
        .get_seat_map(proto::GetSeatMapRequest {
            flight_id: flight.id.clone(),
            cabin: proto::CabinClass::Economy.into(),
        })
        .await?;
    let seats: Vec<String> =
        seat_map.seats.iter().filter(|seat| seat.available).take(2).map(|seat| seat.seat_number.clone()).collect();

    let hold = client.booking().create_booking(booking(&flight.id, &["Layla", "Omar"], seats, &email)).await?;
    println!("held {} on seats {} until {}", hold.reference, hold.seat_numbers.join(", "), time(hold.hold_expires_at));

    let payment = client
        .payment()
        .create_payment_intent(proto::CreatePaymentIntentRequest { booking_id: hold.id.clone() })
        .await?;
    let amount = payment.amount.clone().unwrap_or_default();
    let (units, cents) = (amount.amount_minor / 100, amount.amount_minor % 100);
    println!("paying {units}.{cents:02} {} ({})", amount.currency_code, payment.provider_reference);
    let confirmed = wait_until_confirmed(&client, &hold.id).await?;
    println!("confirmed {} ({} seats)", confirmed.reference, confirmed.seat_numbers.len());

    let extra = client.booking().create_booking(booking(&flight.id, &["Sami"], Vec::new(), &email)).await?;
    let cancelled = client
        .booking()
        .cancel_booking(proto::CancelBookingRequest { booking_id: extra.id.clone(), reason: "plans changed".into() })
        .await?;
    println!("held and cancelled {}: {:?}", cancelled.reference, cancelled.status());

    client.sign_out().await?;
    Ok(())
}

fn time(timestamp: Option<prost_types::Timestamp>) -> String {
    timestamp.map(|t| t.to_string()).unwrap_or_default()
}

fn booking(flight_id: &str, names: &[&str], seat_numbers: Vec<String>, email: &str) -> proto::CreateBookingRequest {
    proto::CreateBookingRequest {
        flight_id: flight_id.to_owned(),
        cabin: proto::CabinClass::Economy.into(),
        passengers: names
            .iter()
            .map(|name| proto::Passenger {
                given_name: (*name).to_owned(),
                family_name: "Haddad".into(),
                date_of_birth: "1990-04-12".into(),
                r#type: proto::PassengerType::Adult.into(),
                ..Default::default()
            })
            .collect(),
        seat_numbers,
        contact_email: email.to_owned(),
        ..Default::default()
    }
}

/// The simulated provider reports the payment by webhook after a short delay (2 s by default).
async fn wait_until_confirmed(client: &Client, booking_id: &str) -> Result<proto::Booking, ApiError> {
    loop {
        let booking =
            client.booking().get_booking(proto::GetBookingRequest { booking_id: booking_id.to_owned() }).await?;
        if booking.status() == proto::BookingStatus::Confirmed {
            return Ok(booking.into_inner());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
