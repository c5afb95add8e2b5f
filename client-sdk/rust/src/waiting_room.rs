//! Waiting for a pass in a flight's waiting room: join, watch the place in the queue (watching again
//! after a broken stream: joining again returns the same ticket, so the place is kept), and hand back the
//! pass `CreateBooking` needs while the room is enabled.

use std::time::{Duration, SystemTime};

use crate::{ApiError, Client, RetryPolicy, proto};

/// An admitted caller's pass: send it as `CreateBookingRequest::waiting_room_pass` before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingRoomPass {
    pub pass: String,
    pub expires_at: SystemTime,
    pub ticket_id: String,
}

/// A place in the queue, as the server reported it before the pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueProgress {
    /// 1 is admitted next. Before the room opens, the place drawn so far among the early arrivals.
    pub position: i64,
    pub estimated_wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum WaitForPassError {
    /// Every cabin of the flight sold out while waiting: no pass will come.
    #[error("the flight sold out while waiting")]
    SoldOut,
    /// The server ended the watch without a pass.
    #[error("the waiting room ended the watch without a pass")]
    NoPass,
    /// The server refused (`NOT_FOUND`: the flight has no enabled waiting room), or the connection kept
    /// failing past the client's retry policy.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl Client {
    /// Joins the flight's waiting room and waits for admission, calling `on_progress` with each place the
    /// server reports. A watch that breaks for a retryable reason is joined and watched again, at most as
    /// often as the client's [`RetryPolicy`] allows in a row (the count starts over with every status).
    pub async fn wait_for_pass(
        &self,
        flight_id: &str,
        mut on_progress: impl FnMut(QueueProgress),
    ) -> Result<WaitingRoomPass, WaitForPassError> {
        let retry = self.retry_policy();
        let mut failures = 0;
        loop {
            let error = match self.watch_ticket(flight_id, &mut on_progress, &mut failures).await {
                Ok(Some(pass)) => return Ok(pass),
                Ok(None) => return Err(WaitForPassError::NoPass),
                Err(WaitForPassError::Api(error)) => error,
                Err(other) => return Err(other),
            };
            failures += 1;
            // Joining is IDEMPOTENT and watching NO_SIDE_EFFECTS: both are safe to repeat.
            match retry.delay_after(failures, &error, true, None, rand::random()) {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return Err(error.into()),
            }
        }
    }

    /// One join and watch: the pass, or `None` when the stream ended without one.
    async fn watch_ticket(
        &self,
        flight_id: &str,
        on_progress: &mut impl FnMut(QueueProgress),
        failures: &mut u32,
    ) -> Result<Option<WaitingRoomPass>, WaitForPassError> {
        let rooms = self.waiting_room();
        // Repeats are this loop's to decide, so a join is not repeated twice over.
        let join = proto::JoinWaitingRoomRequest { flight_id: flight_id.to_owned() };
        let ticket = rooms.join_waiting_room(join).retry(RetryPolicy::never()).await?.into_inner();
        let watch = proto::WatchWaitingRoomRequest { ticket_id: ticket.ticket_id.clone() };
        let mut statuses = rooms.watch_waiting_room(watch).retry(RetryPolicy::never()).await?.into_inner();
        while let Some(status) = statuses.message().await? {
            *failures = 0;
            if let (false, Some(expires_at)) = (status.pass.is_empty(), status.pass_expires_at) {
                let expires_at = SystemTime::try_from(expires_at).unwrap_or(SystemTime::UNIX_EPOCH);
                return Ok(Some(WaitingRoomPass { pass: status.pass, expires_at, ticket_id: ticket.ticket_id }));
            }
            if status.sold_out {
                return Err(WaitForPassError::SoldOut);
            }
            let estimated_wait =
                status.estimated_wait.and_then(|wait| Duration::try_from(wait).ok()).unwrap_or_default();
            on_progress(QueueProgress { position: status.position, estimated_wait });
        }
        Ok(None)
    }
}
