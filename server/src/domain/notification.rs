//! Booking events (what a change to a booking means) and the emails customers get about them.
//!
//! Each change written to a booking's history is classified here into an event; the events customers are
//! told about become an email with a plain-text and an HTML part. Pure: the app layer loads the booking and
//! its flight, the mail infrastructure sends.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{
    booking::{Booking, BookingAction, BookingStatus},
    check_in::BoardingPass,
    flight::Flight,
    ticket::TicketStatus,
};

string_enum!(
    /// What happened to a booking. `REFUND_FAILED`: the provider refused a refund, so the booking is
    /// confirmed (and paid) again.
    BookingEvent {
        Held => "HELD",
        Confirmed => "CONFIRMED",
        Cancelled => "CANCELLED",
        Expired => "EXPIRED",
        RefundRequested => "REFUND_REQUESTED",
        Refunded => "REFUNDED",
        RefundFailed => "REFUND_FAILED",
        SeatsChanged => "SEATS_CHANGED",
        FlightChanged => "FLIGHT_CHANGED",
        CheckedIn => "CHECKED_IN",
    }
);

impl BookingEvent {
    /// The event a history entry records: a move from `from` (`None` when the hold is placed) to `to`,
    /// caused by `cause`. `None` for a note that changes neither status nor seats.
    pub fn of_change(from: Option<BookingStatus>, to: BookingStatus, cause: &str) -> Option<Self> {
        use BookingStatus as S;
        match (from, to) {
            (None, S::Held) => Some(Self::Held),
            (Some(from), to) if from == to => match cause {
                _ if cause == BookingAction::ChangeSeats.as_str() => Some(Self::SeatsChanged),
                _ if cause == BookingAction::ChangeFlight.as_str() => Some(Self::FlightChanged),
                _ if cause == BookingAction::CheckIn.as_str() => Some(Self::CheckedIn),
                _ => None,
            },
            (Some(S::RefundPending), S::Confirmed) => Some(Self::RefundFailed),
            (Some(_), S::Confirmed) => Some(Self::Confirmed),
            (Some(_), S::Cancelled) => Some(Self::Cancelled),
            (Some(_), S::Expired) => Some(Self::Expired),
            (Some(_), S::RefundPending) => Some(Self::RefundRequested),
            (Some(_), S::Refunded) => Some(Self::Refunded),
            // A booking starts HELD, and nothing else returns to HELD.
            (None, _) | (Some(_), S::Held) => None,
        }
    }

    /// Whether the customer gets an email about it.
    pub fn is_emailed(self) -> bool {
        matches!(
            self,
            Self::Confirmed | Self::Cancelled | Self::Expired | Self::Refunded | Self::FlightChanged | Self::CheckedIn
        )
    }
}

/// An email about one booking event, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `<event-id@aerobook>`: the same for every attempt to send it, so a receiving system that sees it
    /// twice (the one crash window) can tell it is one message.
    pub message_id: String,
    pub to: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    /// Barcodes the HTML shows inline (`<img src="cid:...">`), drawn when the email is sent.
    pub barcodes: Vec<InlineBarcode>,
}

/// A boarding pass's barcode in an email: the pass's text, shown where the HTML names `content_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineBarcode {
    pub content_id: String,
    pub text: String,
}

/// The email about `event` (which must be emailed), from the booking and its flights (one per segment, in
/// travel order) as they are now, and the time the event happened. Every flight of the booking is listed
/// with its seats.
pub fn email_for(
    event_id: Uuid,
    event: BookingEvent,
    at: DateTime<Utc>,
    booking: &Booking,
    flights: &[Flight],
) -> Option<Email> {
    let reference = booking.reference.as_str();
    let (subject, opening) = match event {
        BookingEvent::Confirmed => (
            format!("Booking {reference} confirmed"),
            "Your booking is confirmed and paid. Have a good flight!".to_owned(),
        ),
        BookingEvent::Cancelled => (
            format!("Booking {reference} cancelled"),
            "Your booking was cancelled; its seats were released.".to_owned(),
        ),
        BookingEvent::Expired => (
            format!("Booking {reference}: your hold expired"),
            "Your hold expired before it was paid, so its seats were released. You can book again.".to_owned(),
        ),
        BookingEvent::Refunded => (
            format!("Booking {reference} refunded"),
            format!("Your booking was refunded: {} goes back to your card.", booking.total_price),
        ),
        BookingEvent::FlightChanged => (
            format!("Booking {reference}: flight changed"),
            "Your flights were changed as you asked. Here is your booking as it is now.".to_owned(),
        ),
        BookingEvent::CheckedIn => (
            format!("Booking {reference}: your boarding passes"),
            "You are checked in. Show each traveller's boarding pass at the gate: its barcode is the pass.".to_owned(),
        ),
        _ => return None,
    };
    let mut details = vec![("Booking reference".to_owned(), reference.to_owned())];
    let numbered = booking.segments.len() > 1;
    for (i, (segment, flight)) in booking.segments.iter().zip(flights).enumerate() {
        let label = |name: &str| if numbered { format!("{name} {}", i + 1) } else { name.to_owned() };
        let departs = segment.departs_at.with_timezone(&flight.origin_time_zone);
        let seats: Vec<String> = segment.seats.iter().map(ToString::to_string).collect();
        details.extend([
            (
                label("Flight"),
                format!("{} {} to {}", flight.flight_number.as_str(), segment.origin, segment.destination),
            ),
            (label("Departs"), format!("{} local time", departs.format("%a %-d %b %Y, %H:%M"))),
            (label("Cabin"), segment.cabin.as_str().replace('_', " ").to_lowercase()),
            (label("Seats"), seats.join(", ")),
        ]);
        let tickets: Vec<String> = booking
            .tickets
            .iter()
            .filter(|ticket| ticket.flight_id == segment.flight_id && ticket.status != TicketStatus::Void)
            .map(|ticket| match booking.passengers.get(ticket.passenger_index) {
                Some(passenger) => {
                    format!("{} ({} {})", ticket.ticket_number, passenger.given_name, passenger.family_name)
                }
                None => ticket.ticket_number.clone(),
            })
            .collect();
        if !tickets.is_empty() {
            details.push((label("E-tickets"), tickets.join(", ")));
        }
    }
    details.push(("Total".to_owned(), booking.total_price.to_string()));
    let passes = if event == BookingEvent::CheckedIn { passes_to_show(booking, flights, at) } else { Vec::new() };
    if event == BookingEvent::CheckedIn && passes.is_empty() {
        // Every pass was used or voided (boarded, or the flight changed) before the email went out.
        return None;
    }
    for (i, (pass, flight)) in passes.iter().enumerate() {
        let boarding = pass.boarding_time.with_timezone(&flight.origin_time_zone);
        details.push((
            format!("Boarding pass {}", i + 1),
            format!(
                "{}: {} {} to {}, seat {}, sequence {}, boarding {} local time, e-ticket {}",
                pass.passenger_name,
                pass.flight_number,
                pass.origin,
                pass.destination,
                pass.seat,
                pass.sequence_number,
                boarding.format("%a %-d %b %H:%M"),
                pass.ticket_number
            ),
        ));
    }
    let travellers: Vec<String> = booking
        .passengers
        .iter()
        .map(|passenger| format!("{} {}", passenger.given_name, passenger.family_name))
        .collect();
    let when = at.format("%Y-%m-%d %H:%M UTC");

    let mut text = format!("{opening}\n\n");
    for (label, value) in &details {
        let _ = writeln!(text, "{label}: {value}");
    }
    text.push_str("\nTravellers:\n");
    for traveller in &travellers {
        let _ = writeln!(text, "- {traveller}");
    }
    let _ = write!(text, "\nThis message is about a change made at {when}.\n-- \nAerobook\n");

    let mut html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{}</title></head><body>\n<p>{}</p>\n<table>\n",
        escape(&subject),
        escape(&opening)
    );
    for (label, value) in &details {
        let _ = writeln!(html, "<tr><th align=\"left\">{}</th><td>{}</td></tr>", escape(label), escape(value));
    }
    html.push_str("</table>\n<p>Travellers:</p>\n<ul>\n");
    for traveller in &travellers {
        let _ = writeln!(html, "<li>{}</li>", escape(traveller));
    }
    html.push_str("</ul>\n");
    let mut barcodes = Vec::with_capacity(passes.len());
    for (i, (pass, _)) in passes.iter().enumerate() {
        let content_id = format!("pass-{}@aerobook", pass.ticket_number);
        let _ = writeln!(
            html,
            "<p>Boarding pass {}: {}<br><img src=\"cid:{}\" alt=\"Boarding pass barcode\"></p>",
            i + 1,
            escape(&pass.passenger_name),
            escape(&content_id)
        );
        barcodes.push(InlineBarcode { content_id, text: pass.bcbp.clone() });
    }
    let _ = write!(html, "<p>This message is about a change made at {when}.</p>\n</body></html>\n");

    Some(Email {
        message_id: format!("<{event_id}@aerobook>"),
        to: booking.contact_email.clone(),
        subject,
        text,
        html,
        barcodes,
    })
}

/// The passes of the booking's checked-in passengers on its flights departing after `at`, in travel order.
fn passes_to_show<'f>(booking: &Booking, flights: &'f [Flight], at: DateTime<Utc>) -> Vec<(BoardingPass, &'f Flight)> {
    flights
        .iter()
        .filter(|flight| flight.departs_at > at)
        .flat_map(|flight| {
            booking
                .tickets
                .iter()
                .filter(|ticket| ticket.flight_id == flight.id && ticket.status == TicketStatus::CheckedIn)
                .filter_map(move |ticket| Some((BoardingPass::of(booking, flight, ticket).ok()?, flight)))
        })
        .collect()
}

/// Text made safe inside HTML elements and attribute values.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::booking::BookingStatus as S;

    #[test]
    fn changes_are_classified_into_events() {
        let of = BookingEvent::of_change;
        assert_eq!(of(None, S::Held, "HOLD_PLACED"), Some(BookingEvent::Held));
        assert_eq!(of(Some(S::Held), S::Confirmed, "CONFIRM"), Some(BookingEvent::Confirmed));
        assert_eq!(of(Some(S::Expired), S::Confirmed, "PAYMENT_SUCCEEDED"), Some(BookingEvent::Confirmed));
        assert_eq!(of(Some(S::RefundPending), S::Confirmed, "REFUND_FAILED"), Some(BookingEvent::RefundFailed));
        assert_eq!(of(Some(S::Held), S::Cancelled, "CANCEL"), Some(BookingEvent::Cancelled));
        assert_eq!(of(Some(S::Held), S::Expired, "EXPIRE"), Some(BookingEvent::Expired));
        assert_eq!(of(Some(S::Confirmed), S::RefundPending, "REQUEST_REFUND"), Some(BookingEvent::RefundRequested));
        assert_eq!(of(Some(S::RefundPending), S::Refunded, "COMPLETE_REFUND"), Some(BookingEvent::Refunded));
        assert_eq!(of(Some(S::Held), S::Held, "CHANGE_SEATS"), Some(BookingEvent::SeatsChanged));
        assert_eq!(of(Some(S::Confirmed), S::Confirmed, "CHANGE_FLIGHT"), Some(BookingEvent::FlightChanged));
        assert_eq!(of(Some(S::Confirmed), S::Confirmed, "AUTO_REFUND"), None);
        assert_eq!(of(Some(S::Confirmed), S::Confirmed, "CHECK_IN"), Some(BookingEvent::CheckedIn));
    }

    #[test]
    fn customers_hear_about_confirmation_cancellation_expiry_refund_and_flight_changes() {
        let emailed: Vec<_> = BookingEvent::ALL.iter().filter(|e| e.is_emailed()).map(|e| e.as_str()).collect();
        assert_eq!(emailed, ["CONFIRMED", "CANCELLED", "EXPIRED", "REFUNDED", "FLIGHT_CHANGED", "CHECKED_IN"]);
    }

    #[test]
    fn html_escapes_what_customers_typed() {
        assert_eq!(escape("<b>O'Neil & \"Co\"</b>"), "&lt;b&gt;O&#39;Neil &amp; &quot;Co&quot;&lt;/b&gt;");
    }
}
