//! A change of a paid booking that waits for its amount due. ChangeFlight takes the new seats at once, so
//! the payment can only complete what was held; until then the booking travels as it was booked. The
//! change lapses at the hold TTL when unpaid, and its seats go back on sale.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    flight::{CabinClass, SeatNumber},
    money::Money,
};

string_enum!(
    /// Where a paid-for change is: PENDING (waiting for its payment; the new seats are the booking's),
    /// COMPLETED (paid: the segment was replaced), or LAPSED (unpaid at its expiry, superseded by another
    /// change, or its booking refunded: the seats went back).
    PendingChangeState {
        Pending => "PENDING",
        Completed => "COMPLETED",
        Lapsed => "LAPSED",
    }
);

/// A change waiting for its payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingChange {
    /// The quote it makes: a quote is made once.
    pub quote_id: Uuid,
    /// The segment's flight being replaced.
    pub flight_id: Uuid,
    pub new_flight_id: Uuid,
    pub new_cabin: CabinClass,
    /// Held on the new flight for the party, in passenger order.
    pub seats: Vec<SeatNumber>,
    /// Positive: what the change's payment charges.
    pub amount_due: Money,
    pub expires_at: DateTime<Utc>,
}

impl PendingChange {
    /// Whether the change can still be paid for at `now`.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        now < self.expires_at
    }
}
