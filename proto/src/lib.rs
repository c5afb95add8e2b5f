//! Aerobook's gRPC contract, generated from `proto/aerobook/v1/*.proto`.
//!
//! - [`v1`]: messages, enums, tonic clients (`*_client`) and servers (`*_server`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors (with imports and comments), served by reflection.
//! - [`RPC_POLICIES`] / [`rpc_policy`]: each RPC's `(aerobook.v1.policy)` option (public or which roles,
//!   whether an idempotency key is required, which rate-limit class) and its standard `idempotency_level`.
//!   Servers and SDKs derive their behaviour from it; nothing repeats it by hand.
//! - [`for_each_service!`]: every service and RPC, for code that wraps them all (the SDK's typed client).
//! - [`codec`]: the prost codec the generated clients and servers use (small per-call buffers).
//! - [`bcbp`]: the IATA bar coded boarding pass string of `BoardingPass.bcbp`, written and read.

pub mod bcbp;
pub mod codec;

#[allow(clippy::all, clippy::pedantic, missing_docs)]
pub mod v1 {
    tonic::include_proto!("aerobook.v1");
}

/// Encoded `FileDescriptorSet` of the whole contract, including `google.protobuf` imports.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/aerobook_descriptor.bin"));

/// Who may call an RPC and what its calls must carry, as declared in the proto.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RpcPolicy {
    /// gRPC path, `/aerobook.v1.Service/Method`.
    pub path: &'static str,
    /// Callable without an access token.
    pub public: bool,
    /// Roles allowed to call; empty on a non-public RPC means any signed-in caller.
    pub roles: &'static [v1::Role],
    /// Calls must carry an `idempotency-key` header.
    pub idempotency_key_required: bool,
    /// The token bucket calls draw from.
    pub rate_limit: v1::RateLimitClass,
    /// The RPC's standard `idempotency_level` option: whether a call may be repeated without effect.
    pub idempotency_level: IdempotencyLevel,
    /// The response is a stream.
    pub server_streaming: bool,
}

/// `google.protobuf.MethodOptions.IdempotencyLevel`, as each RPC declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyLevel {
    /// Not declared: repeating the call may act twice.
    Unknown,
    /// A read: repeating it changes nothing.
    NoSideEffects,
    /// Repeating it has the effect of calling once.
    Idempotent,
}

impl RpcPolicy {
    /// Whether a caller of `role` passes the role rule (public RPCs admit everyone, signed in or not).
    pub fn admits(&self, role: v1::Role) -> bool {
        self.public || self.roles.is_empty() || self.roles.contains(&role)
    }

    /// Whether a call may be sent again when it is unknown if the server acted on it (a connection lost
    /// before the answer): reads and idempotent RPCs, and RPCs whose calls carry an idempotency key, provided
    /// the repeat carries the same key.
    pub fn safe_to_repeat(&self) -> bool {
        self.idempotency_level != IdempotencyLevel::Unknown || self.idempotency_key_required
    }
}

include!(concat!(env!("OUT_DIR"), "/rpc_policies.rs"));
include!(concat!(env!("OUT_DIR"), "/rpc_catalogue.rs"));

/// The policy of the RPC at `path` (`/aerobook.v1.Service/Method`); `None` for paths outside the contract
/// (health, reflection, plain HTTP routes).
pub fn rpc_policy(path: &str) -> Option<&'static RpcPolicy> {
    RPC_POLICIES.binary_search_by(|policy| policy.path.cmp(path)).ok().map(|index| &RPC_POLICIES[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_contract_rpc_has_a_policy_and_lookup_finds_it() {
        assert!(RPC_POLICIES.windows(2).all(|w| w[0].path < w[1].path), "table must be sorted");
        let create_flight = rpc_policy("/aerobook.v1.FlightService/CreateFlight").expect("declared");
        assert!(create_flight.idempotency_key_required);
        assert_eq!(create_flight.roles, &[v1::Role::Operator]);
        assert!(rpc_policy("/aerobook.v1.FlightService/SearchFlights").expect("declared").public);
        assert_eq!(create_flight.rate_limit, v1::RateLimitClass::Mutation);
        assert!(RPC_POLICIES.iter().all(|p| p.rate_limit != v1::RateLimitClass::Unspecified));
        assert!(rpc_policy("/grpc.health.v1.Health/Check").is_none());
    }

    #[test]
    fn signed_in_rpcs_admit_every_role_and_role_lists_are_exact() {
        let get_me = rpc_policy("/aerobook.v1.AuthService/GetMe").expect("declared");
        assert!(!get_me.public && get_me.roles.is_empty());
        assert!(get_me.admits(v1::Role::Customer) && get_me.admits(v1::Role::Service));
        let confirm = rpc_policy("/aerobook.v1.BookingService/ConfirmBooking").expect("declared");
        assert!(!confirm.admits(v1::Role::Customer));
        assert!(confirm.admits(v1::Role::Operator) && confirm.admits(v1::Role::Service));
    }

    #[test]
    fn reads_have_no_side_effects_and_only_keyed_or_declared_calls_are_safe_to_repeat() {
        let policy = |path: &str| rpc_policy(path).expect("declared");
        assert_eq!(policy("/aerobook.v1.BookingService/GetBooking").idempotency_level, IdempotencyLevel::NoSideEffects);
        assert!(policy("/aerobook.v1.FlightService/WatchAvailability").safe_to_repeat());
        assert!(policy("/aerobook.v1.BookingService/CreateBooking").safe_to_repeat(), "keyed");
        assert!(policy("/aerobook.v1.AuthService/Logout").safe_to_repeat(), "idempotent");
        for unsafe_to_repeat in ["/aerobook.v1.AuthService/Login", "/aerobook.v1.AuthService/RefreshToken"] {
            assert!(!policy(unsafe_to_repeat).safe_to_repeat(), "{unsafe_to_repeat}");
        }
    }

    /// Expands the catalogue into (path, streaming, the policy row's path) triples.
    macro_rules! catalogue_paths {
        ($($(#[$doc:meta])* $service:ident($module:ident::$client:ident) as $accessor:ident {
            $($(#[$method_doc:meta])* $kind:ident $method:ident($request:ty) -> $response:ty
                = $path:literal, $policy:expr;)*
        })*) => {
            vec![$($(($path, stringify!($kind) == "server_streaming", ($policy as &RpcPolicy).path)),*),*]
        };
    }

    #[test]
    fn the_catalogue_names_every_rpc_with_its_own_policy_row() {
        let mut listed: Vec<(&str, bool, &str)> = for_each_service!(catalogue_paths);
        listed.sort();
        let expected: Vec<(&str, bool, &str)> =
            RPC_POLICIES.iter().map(|p| (p.path, p.server_streaming, p.path)).collect();
        assert_eq!(listed, expected);
    }

    #[test]
    fn descriptor_set_decodes_and_names_every_service() {
        use prost::Message as _;
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).expect("valid descriptor set");
        let services: Vec<_> = set
            .file
            .iter()
            .filter(|f| f.package() == "aerobook.v1")
            .flat_map(|f| &f.service)
            .map(|s| s.name())
            .collect();
        for name in ["AuthService", "BookingService", "FlightService", "PaymentService", "WaitingRoomService"] {
            assert!(services.contains(&name), "{name} missing from {services:?}");
        }
    }
}
