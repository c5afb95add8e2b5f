//! Aerobook's gRPC contract, generated from `proto/aerobook/v1/*.proto`.
//!
//! - [`v1`]: messages, enums, tonic clients (`*_client`) and servers (`*_server`).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptors (with imports and comments), served by reflection.
//! - [`RPC_POLICIES`] / [`rpc_policy`]: each RPC's `(aerobook.v1.policy)` option (public or which roles,
//!   whether an idempotency key is required, which rate-limit class). Servers and SDKs derive their behaviour from it; nothing
//!   repeats it by hand.

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
    /// The response is a stream.
    pub server_streaming: bool,
}

impl RpcPolicy {
    /// Whether a caller of `role` passes the role rule (public RPCs admit everyone, signed in or not).
    pub fn admits(&self, role: v1::Role) -> bool {
        self.public || self.roles.is_empty() || self.roles.contains(&role)
    }
}

include!(concat!(env!("OUT_DIR"), "/rpc_policies.rs"));

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
