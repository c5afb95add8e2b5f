//! Compiles `aerobook/v1/*.proto` with protox (pure Rust: no system `protoc`), generates the prost messages
//! and tonic services, writes the encoded descriptor set for reflection, and turns each RPC's
//! `(aerobook.v1.policy)` and `idempotency_level` options into a static table the server and the SDK read,
//! plus a catalogue macro that hands every service and RPC to code wrapping them all (the SDK's typed client).

use std::{env, fmt::Write as _, fs, path::PathBuf};

use prost::Message as _;
use prost_reflect::{DescriptorPool, MethodDescriptor, ServiceDescriptor, Value};
use prost_types::method_options::IdempotencyLevel;

const PACKAGE: &str = "aerobook.v1";
const POLICY_EXTENSION: &str = "aerobook.v1.policy";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not baked in with env!(): a build script binary shared through a target directory
    // must not keep the path of the checkout that first compiled it.
    let proto_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
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
    let policies = read_policies(&pool)?;
    fs::write(out_dir.join("rpc_policies.rs"), policy_table(&policies)?)?;
    fs::write(out_dir.join("rpc_catalogue.rs"), rpc_catalogue(&pool, &policies)?)?;
    fs::write(out_dir.join("message_sides.rs"), message_sides(&pool)?)?;

    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        .codec_path("crate::codec::SmallBufferCodec")
        .compile_fds(descriptor_set)?;
    Ok(())
}

/// One RPC's options, with enum values as their Rust variant names.
struct Policy {
    path: String,
    public: bool,
    roles: Vec<String>,
    idempotency_key_required: bool,
    rate_limit: String,
    idempotency_level: IdempotencyLevel,
    server_streaming: bool,
}

/// Every RPC's options. Fails the build when an RPC of the package declares no policy, so a new RPC cannot
/// silently skip authentication or idempotency rules.
fn read_policies(pool: &DescriptorPool) -> Result<Vec<Policy>, String> {
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
                    roles.push(upper_camel(role.name().trim_start_matches("ROLE_")));
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
            let rate_limit = upper_camel(class.name().trim_start_matches("RATE_LIMIT_CLASS_"));
            let level = method
                .method_descriptor_proto()
                .options
                .as_ref()
                .map_or(IdempotencyLevel::IdempotencyUnknown, prost_types::MethodOptions::idempotency_level);
            if idempotency_key_required && level == IdempotencyLevel::NoSideEffects {
                return Err(format!("rpc {path} has no side effects, so it may not require an idempotency key"));
            }
            rows.push(Policy {
                path,
                public,
                roles,
                idempotency_key_required,
                rate_limit,
                idempotency_level: level,
                server_streaming: method.is_server_streaming(),
            });
        }
    }
    Ok(rows)
}

/// The policies sorted by path: the order of `RPC_POLICIES`, for binary search.
fn sorted(policies: &[Policy]) -> Vec<&Policy> {
    let mut rows: Vec<&Policy> = policies.iter().collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    rows
}

/// Renders `RPC_POLICIES`.
fn policy_table(policies: &[Policy]) -> Result<String, String> {
    let mut out = String::from(
        "/// Every RPC of `aerobook.v1`, sorted by path, as declared by its `(aerobook.v1.policy)` option.\n",
    );
    out.push_str("pub static RPC_POLICIES: &[RpcPolicy] = &[\n");
    for policy in sorted(policies) {
        let roles: Vec<String> = policy.roles.iter().map(|role| format!("crate::v1::Role::{role}")).collect();
        writeln!(
            out,
            "    RpcPolicy {{ path: {:?}, public: {}, roles: &[{}], idempotency_key_required: {}, \
             rate_limit: crate::v1::RateLimitClass::{}, idempotency_level: IdempotencyLevel::{}, \
             server_streaming: {} }},",
            policy.path,
            policy.public,
            roles.join(", "),
            policy.idempotency_key_required,
            policy.rate_limit,
            match policy.idempotency_level {
                IdempotencyLevel::IdempotencyUnknown => "Unknown",
                IdempotencyLevel::NoSideEffects => "NoSideEffects",
                IdempotencyLevel::Idempotent => "Idempotent",
            },
            policy.server_streaming,
        )
        .map_err(|e| e.to_string())?;
    }
    out.push_str("];\n");
    Ok(out)
}

/// Renders the `for_each_service!` macro: every service of the package with its RPCs (Rust names, message
/// types, path, its row of `RPC_POLICIES`, streaming or not, and the proto comments as docs), for code that
/// wraps each RPC.
fn rpc_catalogue(pool: &DescriptorPool, policies: &[Policy]) -> Result<String, String> {
    let table = sorted(policies);
    let mut services = String::new();
    for service in pool.services().filter(|s| s.package_name() == PACKAGE) {
        let name = service.name();
        let module = format!("{}_client", snake(name));
        let accessor = snake(name.strip_suffix("Service").unwrap_or(name));
        writeln!(services, "            #[doc = {:?}]", service_comments(&service)).map_err(|e| e.to_string())?;
        writeln!(services, "            {name}({module}::{name}Client) as {accessor} {{").map_err(|e| e.to_string())?;
        for method in service.methods() {
            if method.is_client_streaming() {
                return Err(format!("rpc {} streams requests, which the catalogue does not support", method.name()));
            }
            let kind = if method.is_server_streaming() { "server_streaming" } else { "unary" };
            let path = format!("/{}/{}", service.full_name(), method.name());
            let row = table.iter().position(|p| p.path == path).ok_or_else(|| format!("rpc {path} has no policy"))?;
            writeln!(
                services,
                "                #[doc = {:?}]\n                {kind} {}({}) -> {} = {path:?}, &$crate::RPC_POLICIES[{row}];",
                format!("{}\n\n{}", method_comments(&method), policy_summary(table[row])),
                snake(method.name()),
                message_type(&method.input())?,
                message_type(&method.output())?,
            )
            .map_err(|e| e.to_string())?;
        }
        services.push_str("            }\n");
    }
    Ok(format!(
        "/// Calls the macro named `$callback` with every service of `aerobook.v1` and its RPCs, generated from the\n\
         /// descriptors, in this shape (docs are the proto comments):\n\
         ///\n\
         /// ```text\n\
         /// #[doc = \"...\"] BookingService(booking_service_client::BookingServiceClient) as booking {{\n\
         ///     #[doc = \"...\"] unary create_booking($crate::v1::CreateBookingRequest) -> $crate::v1::Booking\n\
         ///         = \"/aerobook.v1.BookingService/CreateBooking\", &$crate::RPC_POLICIES[3];\n\
         ///     #[doc = \"...\"] server_streaming ...;\n\
         /// }}\n\
         /// ```\n\
         #[macro_export]\n\
         macro_rules! for_each_service {{\n    ($callback:ident) => {{\n        $callback! {{\n{services}        }}\n    }};\n}}\n"
    ))
}

/// Renders which messages are requests (what a server decodes) and which are responses, for the codec:
/// a request that does not decode is the caller's fault (`INVALID_ARGUMENT`), a response the server's.
fn message_sides(pool: &DescriptorPool) -> Result<String, String> {
    let mut sides = std::collections::BTreeMap::new();
    for method in pool.services().filter(|s| s.package_name() == PACKAGE).flat_map(|s| s.methods().collect::<Vec<_>>())
    {
        for (message, is_request) in [(method.input(), true), (method.output(), false)] {
            if *sides.entry(message_type(&message)?).or_insert(is_request) != is_request {
                return Err(format!("{} is both a request and a response", message.full_name()));
            }
        }
    }
    let mut out = String::new();
    for (message, is_request) in sides {
        let message = message.replace("$crate", "crate");
        writeln!(out, "impl crate::codec::Side for {message} {{ const IS_REQUEST: bool = {is_request}; }}")
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// One line of docs on who may call and what the SDK adds, e.g. "Callers: operator. Idempotency key:
/// required (the SDK generates one)."
fn policy_summary(policy: &Policy) -> String {
    let callers = match (policy.public, policy.roles.as_slice()) {
        (true, _) => "anyone, signed in or not".to_owned(),
        (false, []) => "any signed-in caller".to_owned(),
        (false, roles) => roles.iter().map(|role| role.to_lowercase()).collect::<Vec<_>>().join(", "),
    };
    let repeats = match (policy.idempotency_key_required, policy.idempotency_level) {
        (true, _) => "Idempotency key: required (generated per call unless set; kept across repeats).",
        (false, IdempotencyLevel::NoSideEffects) => "A read: repeated after a lost connection.",
        (false, IdempotencyLevel::Idempotent) => "Idempotent: repeated after a lost connection.",
        (false, IdempotencyLevel::IdempotencyUnknown) => "Never repeated after a lost connection (it may have acted).",
    };
    format!("Callers: {callers}. {repeats}")
}

fn message_type(message: &prost_reflect::MessageDescriptor) -> Result<String, String> {
    match message.full_name().strip_prefix(PACKAGE).and_then(|name| name.strip_prefix('.')) {
        Some(name) if !name.contains('.') => Ok(format!("$crate::v1::{name}")),
        _ => Err(format!("message {} is not a top-level aerobook.v1 message", message.full_name())),
    }
}

fn service_comments(service: &ServiceDescriptor) -> String {
    leading_comments(service.parent_file_descriptor_proto(), service.path())
}

fn method_comments(method: &MethodDescriptor) -> String {
    leading_comments(method.parent_file().file_descriptor_proto(), method.path())
}

/// The comment block above the element at `path` in its file, as the proto wrote it.
fn leading_comments(file: &prost_types::FileDescriptorProto, path: &[i32]) -> String {
    file.source_code_info
        .iter()
        .flat_map(|info| &info.location)
        .find(|location| location.path == path)
        .and_then(|location| location.leading_comments.as_deref())
        .map(|text| text.lines().map(str::trim).collect::<Vec<_>>().join("\n").trim().to_owned())
        .unwrap_or_default()
}

/// `CreateBooking` -> `create_booking`, as tonic names client methods and modules.
fn snake(upper_camel: &str) -> String {
    let mut out = String::new();
    for (index, ch) in upper_camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && index > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_lowercase());
    }
    out
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
