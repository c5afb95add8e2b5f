//! Customers' emails from the server binary as operators configure it: they reach a real SMTP server
//! (aiosmtpd, in a process of its own) over STARTTLS and implicit TLS, its private CA trusted through
//! `SSL_CERT_FILE`.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use std::{path::Path, process::Stdio};

use aerobook_proto::v1::{
    self as pb, auth_service_client::AuthServiceClient, booking_service_client::BookingServiceClient,
    flight_service_client::FlightServiceClient,
};
use support::{PATIENCE, Server, search_request};
use tokio::{
    io::{AsyncBufReadExt as _, BufReader},
    process::{Child, Command},
};
use tonic::Request;

/// aiosmtpd (`tests/smtp/server.py`) in TLS `mode` with `certificate`, keeping mail in `mail_dir`: the
/// process, its port, and its output (a line per message it accepts).
async fn tls_smtp_server(
    mode: &str,
    certificate: &Path,
    key: &Path,
    mail_dir: &Path,
) -> (Child, u16, tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    let repository = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let python = match std::env::var("AEROBOOK_TEST_SMTP_PYTHON") {
        Ok(python) => python,
        Err(_) => {
            let output = Command::new(repository.join("scripts/ensure-aiosmtpd")).output().await.expect("installer");
            assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
            String::from_utf8(output.stdout).expect("a path").trim().to_owned()
        }
    };
    let mut child = Command::new(python)
        .arg(repository.join("tests/smtp/server.py"))
        .arg(mail_dir)
        .args(["--mode", mode, "--tls-cert"])
        .arg(certificate)
        .arg("--tls-key")
        .arg(key)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start aiosmtpd");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let port = lines.next_line().await.expect("output").expect("a port").parse().expect("a port number");
    (child, port, lines)
}

/// `message` from the holder of `access_token`, with a new idempotency key.
fn keyed<T>(access_token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
    request.metadata_mut().insert("idempotency-key", uuid::Uuid::new_v4().to_string().parse().unwrap());
    request
}

/// A customer holds a seat and cancels: the cancellation email arrives over `mode` TLS at an SMTP server
/// whose certificate only the CA in `SSL_CERT_FILE` vouches for.
async fn the_cancellation_email_arrives_over(mode: &str, url: impl Fn(u16) -> String) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let (certificate, key, mail_dir) =
        (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("mail"));
    std::fs::write(&certificate, certified.cert.pem()).expect("write certificate");
    std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
    let (_smtp, port, mut received) = tls_smtp_server(mode, &certificate, &key, &mail_dir).await;
    let url = url(port);
    let ca = certificate.display().to_string();
    let server = Server::start(&[("AEROBOOK_SMTP_URL", url.as_str()), ("SSL_CERT_FILE", ca.as_str())]).await;

    let channel = server.channel().await;
    let tokens = AuthServiceClient::new(channel.clone())
        .register(pb::RegisterRequest {
            email: "mail@example.com".into(),
            password: "Correct-Horse-Battery-Staple-9".into(),
            full_name: "Mail Reader".into(),
        })
        .await
        .expect("register")
        .into_inner();
    let flight = FlightServiceClient::new(channel.clone())
        .search_flights(search_request())
        .await
        .expect("search")
        .into_inner()
        .flights
        .into_iter()
        .next()
        .expect("a demo flight tomorrow");
    let mut bookings = BookingServiceClient::new(channel);
    let passenger = pb::Passenger {
        given_name: "Mona".into(),
        family_name: "Saleh".into(),
        date_of_birth: "1990-01-01".into(),
        r#type: pb::PassengerType::Adult.into(),
        ..Default::default()
    };
    let booking = bookings
        .create_booking(keyed(
            &tokens.access_token,
            pb::CreateBookingRequest {
                flight_id: flight.id,
                cabin: pb::CabinClass::Economy.into(),
                passengers: vec![passenger],
                seat_numbers: vec![],
                contact_email: "mona@example.com".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("held")
        .into_inner();
    bookings
        .cancel_booking(keyed(
            &tokens.access_token,
            pb::CancelBookingRequest { booking_id: booking.id.clone(), reason: String::new() },
        ))
        .await
        .expect("cancelled");

    let file = tokio::time::timeout(PATIENCE, received.next_line()).await.expect("an email arrives");
    let email = std::fs::read_to_string(file.expect("output").expect("a file name")).expect("the email");
    assert!(email.contains(&format!("Subject: Booking {} cancelled", booking.reference)), "{email}");
    assert!(email.contains("To: mona@example.com"), "{email}");
    server.stop().await;
}

#[tokio::test]
async fn emails_go_over_starttls() {
    the_cancellation_email_arrives_over("starttls", |port| format!("smtp://localhost:{port}?tls=required")).await;
}

#[tokio::test]
async fn emails_go_over_implicit_tls() {
    the_cancellation_email_arrives_over("smtps", |port| format!("smtps://localhost:{port}")).await;
}
