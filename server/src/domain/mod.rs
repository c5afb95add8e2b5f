//! Pure business rules: value types that validate in their constructors, flight layouts, pagination.
//!
//! No I/O here, and no knowledge of tonic, sea-orm or Redis: everything is unit-tested in place.

/// A closed set of names stored as text: `as_str` for the database, `FromStr` back, `ALL` for queries.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, ::serde::Serialize, ::serde::Deserialize)]
        pub enum $name { $($variant),+ }

        impl $name {
            #[allow(dead_code, reason = "some sets are only listed by their tests")]
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;
            fn from_str(text: &str) -> Result<Self, String> {
                match text {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!("unknown {} {}", stringify!($name), $crate::domain::validation::quoted(other))),
                }
            }
        }
    };
}

pub mod airport;
pub mod auth;
pub mod booking;
pub mod change;
pub mod check_in;
#[cfg(test)]
mod fixtures;
pub mod flight;
pub mod hold;
pub mod job;
pub mod money;
pub mod notification;
pub mod pagination;
pub mod payment;
pub mod pending_change;
pub mod search;
pub mod taken_seats;
pub mod ticket;
pub mod travel_document;
pub mod trip;
pub mod validation;
pub mod waiting_room;

#[cfg(test)]
mod properties;
