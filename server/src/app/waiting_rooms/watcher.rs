//! One `WatchWaitingRoom` stream: from each tick, the ticket's position (at most about once a second), then
//! its pass or the sell-out.

use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::watch;

use super::{POSITION_UPDATE_INTERVAL, TicketStatus, WaitingRooms, ticker::RoomTick};
use crate::{
    app::{AppError, streams::WatchPermit},
    domain::waiting_room::{RoomSettings, estimated_wait, position},
    infra::{
        metrics,
        waiting_room::{QueueError, TicketId, TicketRecord},
    },
};

pub(super) enum Step {
    Update(TicketStatus),
    /// The stream's last message.
    Final(TicketStatus),
}

/// One `WatchWaitingRoom` stream.
pub(super) struct TicketWatcher {
    rooms: WaitingRooms,
    ticket: TicketId,
    record: TicketRecord,
    ticks: watch::Receiver<Option<Arc<RoomTick>>>,
    /// The position last sent, and when.
    sent: Option<(u64, tokio::time::Instant)>,
    _permit: WatchPermit,
}

impl TicketWatcher {
    pub fn new(rooms: WaitingRooms, ticket: TicketId, record: TicketRecord, permit: WatchPermit) -> Self {
        let ticks = rooms.subscribe(ticket.flight_id);
        Self { rooms, ticket, record, ticks, sent: None, _permit: permit }
    }

    /// The next message: at once if the status moved and the last position update is old enough, else as
    /// soon as it is (or the next tick brings admission or the sell-out).
    pub async fn next(&mut self) -> Result<Step, AppError> {
        loop {
            let tick = self.ticks.borrow_and_update().clone();
            let mut due = None;
            if let Some(tick) = tick {
                match self.status(&tick).await? {
                    Some(Step::Final(status)) => return Ok(Step::Final(status)),
                    Some(Step::Update(status)) => match self.sent {
                        Some((position, _)) if position == status.position => {}
                        Some((_, at)) if at.elapsed() < POSITION_UPDATE_INTERVAL => {
                            due = Some(at + POSITION_UPDATE_INTERVAL);
                        }
                        _ => {
                            self.sent = Some((status.position, tokio::time::Instant::now()));
                            return Ok(Step::Update(status));
                        }
                    },
                    None => {}
                }
            }
            let wait_for_due = async {
                match due {
                    Some(due) => tokio::time::sleep_until(due).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = self.ticks.changed() => {
                    if changed.is_err() {
                        return Err(AppError::Interrupted("the waiting room's broadcast ended"));
                    }
                }
                () = wait_for_due => {}
            }
        }
    }

    /// The ticket's status under `tick`; `None` while its place is not known yet (an early arrival the
    /// broadcast has not read, or a queue not read yet).
    async fn status(&mut self, tick: &RoomTick) -> Result<Option<Step>, AppError> {
        let now = self.rooms.inner.clock.now();
        let ended = |sold_out| TicketStatus { position: 0, pass: None, sold_out, estimated_wait: TimeDelta::zero() };
        // The tick may be up to a tick old, and a stream opened just after seats came back must not end on
        // it: the sell-out that ends a stream is read again (from the flight's snapshot, in memory).
        if tick.sold_out && self.rooms.sold_out(self.ticket.flight_id).await? {
            return Ok(Some(Step::Final(ended(true))));
        }
        let Some(room) = tick.settings.as_ref().filter(|room| room.enabled) else {
            // No room any more: a pass is not needed, but one does no harm to a client that waits for it.
            return Ok(Some(Step::Final(Box::pin(self.admitted(None, now)).await?)));
        };
        let (Some(queue), early) = tick.queue(&self.record) else { return Ok(None) };
        let number = self.record.number.or_else(|| early.get(&self.ticket.id).copied().filter(|_| queue.opened));
        let position = match number {
            Some(number) => position(number, queue.admission.serving),
            None => match early.get(&self.ticket.id) {
                Some(&rank) => rank,
                None => return Ok(None),
            },
        };
        if position == 0 {
            // The tick may be up to a tick old: a pass is not given for seats sold since.
            if self.rooms.sold_out(self.ticket.flight_id).await? {
                return Ok(Some(Step::Final(ended(true))));
            }
            return Ok(Some(Step::Final(Box::pin(self.admitted(Some(room), now)).await?)));
        }
        let estimated_wait = estimated_wait(position, room.admit_per_minute, room.opens_at, now);
        Ok(Some(Step::Update(TicketStatus { position, pass: None, sold_out: false, estimated_wait })))
    }

    /// The admitted ticket's status with its pass, whose expiry is fixed the first time it is given out.
    /// Boxed where it is awaited: its Redis call is the one large future of a stream, and every waiting
    /// stream would otherwise keep room for it.
    async fn admitted(&self, room: Option<&RoomSettings>, now: DateTime<Utc>) -> Result<TicketStatus, AppError> {
        let ttl = room.map_or(TimeDelta::minutes(5), |room| room.pass_ttl);
        let queues = &self.rooms.inner.queues;
        let expires_ms = match queues.admit(self.ticket, self.record.in_fallback, (now + ttl).timestamp_millis()).await
        {
            Ok(expires_ms) => expires_ms,
            Err(QueueError::Unavailable) => return Err(AppError::Unavailable("waiting-room queue")),
        };
        if expires_ms <= now.timestamp_millis() {
            // Admitted long ago, and the pass has expired since: the ticket is spent.
            return Err(AppError::NotFound("ticket"));
        }
        // Passes carry whole seconds: the expiry told is the one the pass holds.
        let expires_at = DateTime::from_timestamp(expires_ms.div_euclid(1_000), 0).unwrap_or(now + ttl);
        let pass = self.rooms.inner.signer.issue(self.ticket.flight_id, self.record.user_id, expires_at);
        metrics::metrics()
            .waiting_room_admissions
            .add(1, &[opentelemetry::KeyValue::new("flight_id", self.ticket.flight_id.to_string())]);
        Ok(TicketStatus {
            position: 0,
            pass: Some((pass, expires_at)),
            sold_out: false,
            estimated_wait: TimeDelta::zero(),
        })
    }
}
