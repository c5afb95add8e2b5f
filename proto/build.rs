//! Compiles `aerobook/v1/*.proto` with protox (pure Rust: no system `protoc`), generates the prost messages
//! and tonic services, writes the encoded descriptor set for reflection, and turns each RPC's
//! `(aerobook.v1.policy)` option into a static table the server and the SDK read.

use std::{env, fmt::Write as _, fs, path::PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, Value};

const PACKAGE: &str = "aerobook.v1";
const POLICY_EXTENSION: &str = "aerobook.v1.policy";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let package_dir = proto_dir.join("aerobook/v1");
    println!("cargo:rerun-if-changed={}", package_dir.display());

    let mut files: Vec<String> = fs::read_dir(&package_dir)?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    files.retain(|name| name.ends_with(".proto"));
    files.sort();
    let files: Vec<String> = files.iter().map(|name| format!("aerobook/v1/{name}")).collect();

    let mut compiler = protox::Compiler::new([&proto_dir])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    let descriptor_set = compiler.file_descriptor_set();
    let pool = compiler.descriptor_pool();

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("aerobook_descriptor.bin"), descriptor_set.encode_to_vec())?;
    fs::write(out_dir.join("rpc_policies.rs"), policy_table(&pool)?)?;

    tonic_prost_build::configure().build_server(true).build_client(true).compile_fds(descriptor_set)?;
    Ok(())
}

/// Renders `RPC_POLICIES`, sorted by path for binary search. Fails the build when an RPC of the package
/// declares no policy, so a new RPC cannot silently skip authentication or idempotency rules.
fn policy_table(pool: &DescriptorPool) -> Result<String, String> {
    let extension = pool
        .get_extension_by_name(POLICY_EXTENSION)
        .ok_or_else(|| format!("extension {POLICY_EXTENSION} is not defined"))?;
    let mut rows = Vec::new();
    for service in pool.services().filter(|s| s.package_name() == PACKAGE) {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            if !options.has_extension(&extension) {
                return Err(format!("rpc {path} declares no ({POLICY_EXTENSION}) option"));
            }
            let policy = options.get_extension(&extension);
            let policy = policy.as_message().ok_or("policy option is not a message")?;
            let flag = |name: &str| policy.get_field_by_name(name).and_then(|v| v.as_bool()).unwrap_or(false);
            let public = flag("public");
            let idempotency_key_required = flag("idempotency_key_required");
            let role_enum = pool.get_enum_by_name("aerobook.v1.Role").ok_or("enum Role is not defined")?;
            let mut roles = Vec::new();
            if let Some(list) = policy.get_field_by_name("roles") {
                for value in list.as_list().unwrap_or_default() {
                    let Value::EnumNumber(number) = value else {
                        return Err("role is not an enum".into());
                    };
                    let role = role_enum
                        .get_value(*number)
                        .filter(|v| v.number() != 0)
                        .ok_or_else(|| format!("rpc {path} lists an unknown or unspecified role"))?;
                    let variant = upper_camel(role.name().trim_start_matches("ROLE_"));
                    roles.push(format!("crate::v1::Role::{variant}"));
                }
            }
            if public && (!roles.is_empty() || idempotency_key_required) {
                return Err(format!("rpc {path} is public, so it may not list roles or require a key"));
            }
            let class_enum =
                pool.get_enum_by_name("aerobook.v1.RateLimitClass").ok_or("enum RateLimitClass is not defined")?;
            let class = policy
                .get_field_by_name("rate_limit")
                .and_then(|v| v.as_enum_number())
                .and_then(|number| class_enum.get_value(number))
                .filter(|v| v.number() != 0)
                .ok_or_else(|| format!("rpc {path} declares no rate_limit class"))?;
            let class = format!(
                "crate::v1::RateLimitClass::{}",
                upper_camel(class.name().trim_start_matches("RATE_LIMIT_CLASS_"))
            );
            rows.push((path, public, roles, idempotency_key_required, class, method.is_server_streaming()));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from(
        "/// Every RPC of `aerobook.v1`, sorted by path, as declared by its `(aerobook.v1.policy)` option.\n",
    );
    out.push_str("pub static RPC_POLICIES: &[RpcPolicy] = &[\n");
    for (path, public, roles, key, class, streaming) in rows {
        writeln!(
            out,
            "    RpcPolicy {{ path: {path:?}, public: {public}, roles: &[{}], idempotency_key_required: {key}, \
             rate_limit: {class}, server_streaming: {streaming} }},",
            roles.join(", ")
        )
        .map_err(|e| e.to_string())?;
    }
    out.push_str("];\n");
    Ok(out)
}

fn upper_camel(screaming_snake: &str) -> String {
    screaming_snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars.next().map_or_else(String::new, |first| first.to_string() + &chars.as_str().to_lowercase())
        })
        .collect()
}
