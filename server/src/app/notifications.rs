//! Customers' emails about their bookings: the `SEND_EMAIL` job of each booking event worth telling.
//!
//! One email per event, whatever retries do: the Message-ID is derived from the event, a send is recorded
//! (with the job's completion) before the job counts as done, and a job that finds its event's email
//! recorded completes without sending. The one window: the process stops after the SMTP server accepted
//! the message and before the record commits. The job then runs again after its lease and sends the
//! same message (same Message-ID) a second time; nothing else can send it twice.

use uuid::Uuid;

use super::AppError;
use crate::{
    domain::notification::email_for,
    infra::{clock::Clock, mail::Mailer},
    store::{Store, StoreError, bookings, flights, history, mail, outbox},
};

#[derive(Clone)]
pub struct Notifications {
    store: Store,
    mailer: Mailer,
    clock: Clock,
}

impl Notifications {
    pub fn new(store: Store, mailer: Mailer, clock: Clock) -> Self {
        Self { store, mailer, clock }
    }

    /// The `SEND_EMAIL` job of booking event `event_id`, attempt `attempts` of job `job_id`.
    #[tracing::instrument(skip(self))]
    pub async fn send_email_job(&self, event_id: Uuid, job_id: Uuid, attempts: i32) -> Result<(), AppError> {
        let db = self.store.conn();
        let email = if mail::was_sent(db, event_id).await? {
            tracing::info!(%event_id, "email already sent for this event; not sending it again");
            None
        } else {
            let entry = history::event(db, event_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("email job for a missing booking event {event_id}")))?;
            let booking = bookings::get(db, entry.booking_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt(format!("booking event {event_id} of a missing booking")))?;
            let mut booked = Vec::with_capacity(booking.segments.len());
            for flight_id in booking.flight_ids() {
                booked.push(
                    flights::get(db, flight_id)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt(format!("booking {} of a missing flight", booking.id)))?,
                );
            }
            email_for(event_id, entry.event, entry.at, &booking, &booked)
        };
        if let Some(email) = &email {
            self.mailer.send(email).await?;
        }
        let now = self.clock.now();
        let txn = self.store.begin_write().await?;
        if let Some(email) = &email {
            mail::record_sent(&txn, event_id, &email.message_id, &email.to, now).await?;
            tracing::info!(%event_id, message_id = email.message_id, "email sent");
        }
        if !outbox::complete(&txn, job_id, attempts, now).await? {
            // Our lease passed mid-send and another worker took the job: the send is recorded all the
            // same (the record is what keeps that worker from sending again).
            tracing::warn!(%event_id, %job_id, "email job taken over by another worker while sending");
        }
        txn.commit().await.map_err(StoreError::from)?;
        Ok(())
    }
}
