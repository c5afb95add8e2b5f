//! Live availability: seat counts pushed to `WatchAvailability` streams as they change, the per-caller
//! limit on open streams, and, with Redis, changes relayed to every instance's watchers.

use std::time::Duration;

use aerobook_proto::v1 as pb;
use aerobook_tests::{ContractError, backend_tests};
use futures::StreamExt as _;
use tonic::Code;
use uuid::Uuid;

use crate::bookings::*;

backend_tests! {
    async fn availability_is_pushed_as_seat_counts_change(app: TestApp) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let mut updates = app.flights()
            .watch_availability(pb::WatchAvailabilityRequest { flight_id: flight.id.clone() })
            .await
            .unwrap()
            .into_inner();
        let mut next_economy = async || {
            let update = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.expect("an update").unwrap().unwrap();
            assert_eq!(update.flight_id, flight.id);
            update.cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).unwrap().seats_available
        };
        assert_eq!(next_economy().await, 4, "the current state comes first");
        let sara = Customer::new(&app);
        let booking = sara.book(&app, hold(&flight, vec![adult("Sara"), adult("Omar")], &[])).await.unwrap();
        assert_eq!(next_economy().await, 2);
        sara.cancel(&app, &booking).await.unwrap();
        assert_eq!(next_economy().await, 4);

        let status = app.flights().watch_availability(pb::WatchAvailabilityRequest { flight_id: Uuid::now_v7().to_string() }).await.unwrap_err();
        assert_eq!(reason(&status), "NOT_FOUND");
    }

    async fn open_availability_streams_are_limited_per_caller(app: TestApp, settings = [("AEROBOOK_MAX_WATCH_STREAMS_PER_CALLER", "2")]) {
        let flight = flight_with_economy(&app, 2, "AB").await;
        let sara = Customer::new(&app);
        let watch = |caller: &Customer| {
            let mut client = app.flights();
            let request = caller.plain(pb::WatchAvailabilityRequest { flight_id: flight.id.clone() });
            async move { client.watch_availability(request).await }
        };
        let first = watch(&sara).await.unwrap();
        let _second = watch(&sara).await.unwrap();
        let refused = ContractError::from_status(&watch(&sara).await.unwrap_err());
        assert_eq!((refused.code, refused.reason.as_str()), (Code::ResourceExhausted, "RATE_LIMITED"));
        assert!(watch(&Customer::new(&app)).await.is_ok(), "the limit is per caller");
        drop(first);
        // The server frees the place when it has processed the client's reset of the stream, which no
        // answer tells: each refused attempt is a round trip, until a bound.
        let reopened = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match watch(&sara).await {
                    Ok(stream) => return stream,
                    Err(status) => assert_eq!(reason(&status), "RATE_LIMITED"),
                }
            }
        })
        .await;
        assert!(reopened.is_ok(), "a closed stream frees its place");
    }

    async fn with_redis_watchers_on_every_instance_see_each_change(app: TestApp) {
        if app.redis_prefix.is_none() {
            return; // Without Redis, each instance signals only its own watchers.
        }
        let other = app.another_instance().await;
        let flight = flight_with_economy(&app, 2, "AB").await;
        let mut updates = other.flights()
            .watch_availability(pb::WatchAvailabilityRequest { flight_id: flight.id.clone() })
            .await
            .unwrap()
            .into_inner();
        let economy = |update: pb::AvailabilityUpdate| update.cabins.iter().find(|c| c.cabin() == pb::CabinClass::Economy).unwrap().seats_available;
        assert_eq!(economy(updates.next().await.unwrap().unwrap()), 4);
        Customer::new(&app).book(&app, hold(&flight, vec![adult("Sara")], &[])).await.unwrap();
        let update = tokio::time::timeout(Duration::from_secs(10), updates.next()).await.expect("relayed through Redis");
        assert_eq!(economy(update.unwrap().unwrap()), 3);
    }

}
