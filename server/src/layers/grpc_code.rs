//! gRPC status codes by the name the specification gives them, for labels and logs: one home for the call
//! metrics (labels of answers without the error contract) and the load tool.

use tonic::Code;

/// `RESOURCE_EXHAUSTED` for `Code::ResourceExhausted`: a gRPC code as the specification names it (how a
/// status without the contract's details, e.g. one tonic answered itself, is labelled).
pub fn grpc_code_name(code: Code) -> String {
    let camel = format!("{code:?}");
    let mut name = String::with_capacity(camel.len() + 4);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_code_names_are_the_specification_s() {
        assert_eq!(grpc_code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
        assert_eq!(grpc_code_name(Code::InvalidArgument), "INVALID_ARGUMENT");
        assert_eq!(grpc_code_name(Code::Ok), "OK");
    }
}
