//! An instance that crashes under load: three server processes on one PostgreSQL + Redis, buyers that send
//! each hold, with its one idempotency key, to another instance after a failure (as a load balancer with
//! retries does), and one instance killed with SIGKILL mid-load, then started again. Needs PostgreSQL and
//! Redis (`DATABASE_URL`, `REDIS_URL`): skipped without them, except under CI.

#[allow(dead_code, reason = "each test binary uses part of the shared support")]
mod support;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use aerobook_proto::v1::{
    self as pb, booking_service_client::BookingServiceClient, flight_service_client::FlightServiceClient,
};
use support::{
    Server,
    deployment::{Deployment, record},
    economy_available, new_customer_token, one_seat_hold, search_request,
};
use tokio::sync::mpsc;
use tonic::{Code, Request, transport::Channel};

const BUYERS: usize = 30;
/// Attempts a buyer makes before giving up (each on the next instance, 100 ms apart).
const ATTEMPTS: usize = 100;

/// One buyer's hold, sent to the instances in turn (starting at `first`) until one answers it: a failed
/// connection, `UNAVAILABLE` or `IDEMPOTENCY_IN_PROGRESS` moves on to the next with the same key.
async fn book(
    instances: &Mutex<Vec<SocketAddr>>,
    first: usize,
    access_token: &str,
    message: pb::CreateBookingRequest,
) -> pb::Booking {
    let key = format!("crash-test-{}", uuid::Uuid::new_v4());
    for attempt in 0..ATTEMPTS {
        let addr = {
            let live = instances.lock().unwrap();
            live[(first + attempt) % live.len()]
        };
        let answer = async {
            let channel = Channel::from_shared(format!("http://{addr}")).unwrap().connect().await?;
            let mut request = Request::new(message.clone());
            request.metadata_mut().insert("authorization", format!("Bearer {access_token}").parse().unwrap());
            request.metadata_mut().insert("idempotency-key", key.parse().unwrap());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                BookingServiceClient::new(channel).create_booking(request).await,
            )
        };
        match answer.await {
            Ok(Ok(booking)) => return booking.into_inner(),
            Ok(Err(status))
                if !matches!(status.code(), Code::Unavailable | Code::Aborted | Code::Unknown | Code::Cancelled) =>
            {
                panic!("a hold refused for good: {status:?}")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    panic!("no instance answered the hold in {ATTEMPTS} attempts")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_killed_mid_load_loses_and_doubles_nothing() {
    let Some(deployment) = Deployment::on_postgres_and_redis().await else { return };
    let settings = deployment.settings(&deployment.database_url);
    let mut servers =
        vec![Server::start(&settings).await, Server::start(&settings).await, Server::start(&settings).await];
    let instances = Arc::new(Mutex::new(servers.iter().map(|server| server.addr).collect::<Vec<_>>()));

    let search = search_request();
    let found = FlightServiceClient::new(servers[0].channel().await).search_flights(search).await.expect("search");
    let flight = found.into_inner().flights.into_iter().next().expect("a demo flight tomorrow");
    let seats_before = economy_available(&flight);

    let (answered, mut answers) = mpsc::unbounded_channel::<()>();
    let buyers = (0..BUYERS).map(|i| {
        let (instances, answered) = (instances.clone(), answered.clone());
        let (access_token, message) = (new_customer_token(), one_seat_hold(&flight.id));
        tokio::spawn(async move {
            let booking = book(&instances, i, &access_token, message).await;
            let _ = answered.send(());
            booking
        })
    });
    let buyers: Vec<_> = buyers.collect();

    // A third of the buyers have their answer: the second instance dies, and is started again.
    for _ in 0..BUYERS / 3 {
        answers.recv().await;
    }
    let killed = servers.remove(1);
    let killed_addr = killed.addr;
    killed.kill().await;
    instances.lock().unwrap().retain(|addr| *addr != killed_addr);
    let restarted = Server::start(&settings).await;
    instances.lock().unwrap().push(restarted.addr);
    servers.push(restarted);

    let mut booked = std::collections::BTreeSet::new();
    for buyer in buyers {
        assert!(booked.insert(buyer.await.expect("buyer").id), "each buyer has a booking of its own");
    }
    assert_eq!(booked.len(), BUYERS);
    let read = pb::GetFlightRequest { flight_id: flight.id.clone() };
    let after = FlightServiceClient::new(servers[0].channel().await).get_flight(read).await.expect("flight");
    assert_eq!(seats_before - economy_available(&after.into_inner()), BUYERS as i32, "one seat per buyer, none twice");

    // The operators' check, as they would run it after the incident.
    let checks = deployment.admin_check().await;
    record("an instance SIGKILLed mid-load and restarted, 3 processes", BUYERS, 1, checks);
    for server in servers {
        server.stop().await;
    }
    deployment.drop_schema().await;
}
