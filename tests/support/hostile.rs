//! Hostile requests generated from the contract's descriptors: for every field of a request (nested
//! messages and the first element of repeated ones included), the values a careless or malicious client
//! sends, plus bodies the wire format itself refuses. A field added to the proto is covered the day it lands.

use bytes::{Buf as _, BufMut as _, Bytes};
use prost::Message as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _, Value,
};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The contract's descriptors, as the server and SDKs compile them.
pub fn contract() -> DescriptorPool {
    DescriptorPool::decode(aerobook_proto::FILE_DESCRIPTOR_SET).expect("the contract's descriptors")
}

/// What a value is meant to probe; some kinds must be refused by any field that gets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    Empty,
    /// 10,000 characters, or 10,000 elements: past every documented limit.
    TooLong,
    ControlCharacters,
    /// An enum number the contract does not define.
    UnknownEnum,
    OutOfRange,
    /// SQL, script and path text: valid text for a free-text field, never more than text.
    Injection,
    /// Text a person may well write (an apostrophe, Arabic script, emoji): accepted fields keep it as sent.
    HumanText,
    /// Bytes the protobuf wire format refuses (invalid UTF-8 in a string, a wrong wire type, garbage).
    Undecodable,
}

impl Probe {
    /// Whether every field must refuse it (with `VALIDATION_ERROR` naming the field, or the transport's own
    /// `INVALID_ARGUMENT`/`RESOURCE_EXHAUSTED`).
    pub fn must_be_refused(self) -> bool {
        matches!(self, Self::TooLong | Self::ControlCharacters | Self::UnknownEnum | Self::Undecodable)
    }
}

/// One hostile request: which field (`passengers[0].given_name`; empty for the whole body), what it probes,
/// and the encoded body.
#[derive(Debug, Clone)]
pub struct Mutation {
    pub field: String,
    pub probe: Probe,
    pub body: Vec<u8>,
}

const INJECTIONS: [&str; 3] = ["'; DROP TABLE bookings; --", "<script>alert(1)</script>", "../../etc/passwd"];
pub const HUMAN_TEXT: [&str; 3] = ["O'Brien", "عبد الله", "Zoë ✈️🧳"];

/// Every mutation of `baseline` (a valid request), field by field, then whole bodies of garbage.
pub fn mutations(baseline: &DynamicMessage) -> Vec<Mutation> {
    let mut found = Vec::new();
    mutate_fields(baseline, "", &|message| message, &mut found);
    for field in baseline.descriptor().fields() {
        // Raw wire forms, on top-level fields: the last occurrence of a field wins when decoding.
        let mut body = baseline.encode_to_vec();
        if field.kind() == Kind::String {
            put_key(&mut body, field.number(), 2);
            put_varint(&mut body, 3);
            body.extend_from_slice(&[0xff, 0xfe, 0xc0]);
        } else if matches!(field.kind(), Kind::Bytes | Kind::Message(_)) {
            // A varint where a length-delimited value belongs.
            put_key(&mut body, field.number(), 0);
            put_varint(&mut body, 1);
        } else if field.is_list() {
            // Repeated numbers take either wire form: nothing to get wrong.
            continue;
        } else {
            // A length-delimited value where a number belongs.
            put_key(&mut body, field.number(), 2);
            body.extend_from_slice(&[1, 1]);
        }
        found.push(Mutation { field: field.name().to_owned(), probe: Probe::Undecodable, body });
    }
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    for length in [1, 7, 64, 512] {
        let garbage = (0..length)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        found.push(Mutation { field: String::new(), probe: Probe::Undecodable, body: garbage });
    }
    found
}

fn mutate_fields(
    message: &DynamicMessage,
    prefix: &str,
    rebuild: &dyn Fn(DynamicMessage) -> DynamicMessage,
    found: &mut Vec<Mutation>,
) {
    for field in message.descriptor().fields() {
        let path = format!("{prefix}{}", field.name());
        for (probe, value) in hostile_values(&field, message) {
            let mut changed = message.clone();
            changed.set_field(&field, value);
            found.push(Mutation { field: path.clone(), probe, body: rebuild(changed).encode_to_vec() });
        }
        if let Kind::Message(inner) = field.kind() {
            if field.is_map() || is_well_known(&inner) {
                continue;
            }
            // Into the sub-message the baseline has (or the first element of its list).
            let current = message.get_field(&field).into_owned();
            let (sub, sub_path) = match (&current, field.is_list()) {
                (Value::List(items), true) => match items.first() {
                    Some(Value::Message(first)) => (first.clone(), format!("{path}[0].")),
                    _ => continue,
                },
                (Value::Message(sub), false) if message.has_field(&field) => (sub.clone(), format!("{path}.")),
                _ => continue,
            };
            let field = field.clone();
            let parent = message.clone();
            let place = move |changed: DynamicMessage| {
                let mut parent = parent.clone();
                if let Value::List(items) = parent.get_field_mut(&field) {
                    items[0] = Value::Message(changed);
                } else {
                    parent.set_field(&field, Value::Message(changed));
                }
                rebuild(parent)
            };
            mutate_fields(&sub, &sub_path, &place, found);
        }
    }
}

/// Timestamps and other `google.protobuf` types are probed as values, not field by field.
fn is_well_known(message: &MessageDescriptor) -> bool {
    message.package_name() == "google.protobuf"
}

fn hostile_values(field: &FieldDescriptor, message: &DynamicMessage) -> Vec<(Probe, Value)> {
    if field.is_list() {
        let element = match message.get_field(field).as_list().and_then(<[Value]>::first) {
            Some(first) => first.clone(),
            None => match field.kind() {
                Kind::String => Value::String("x".into()),
                Kind::Message(inner) => Value::Message(DynamicMessage::new(inner)),
                kind => Value::default_value(&kind),
            },
        };
        return vec![(Probe::Empty, Value::List(Vec::new())), (Probe::TooLong, Value::List(vec![element; 10_000]))];
    }
    let text = |probe, text: &str| (probe, Value::String(text.to_owned()));
    match field.kind() {
        Kind::String => {
            let mut values = vec![
                text(Probe::Empty, ""),
                text(Probe::TooLong, &"x".repeat(10_000)),
                text(Probe::ControlCharacters, "a\u{0}b\u{7}\u{1b}[31m"),
            ];
            values.extend(INJECTIONS.iter().map(|value| text(Probe::Injection, value)));
            values.extend(HUMAN_TEXT.iter().map(|value| text(Probe::HumanText, value)));
            values
        }
        Kind::Enum(_) => vec![(Probe::UnknownEnum, Value::EnumNumber(99)), (Probe::UnknownEnum, Value::EnumNumber(-1))],
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            vec![(Probe::OutOfRange, Value::I32(-1)), (Probe::OutOfRange, Value::I32(i32::MAX))]
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            vec![(Probe::OutOfRange, Value::I64(-1)), (Probe::OutOfRange, Value::I64(i64::MAX))]
        }
        Kind::Uint32 | Kind::Fixed32 => vec![(Probe::OutOfRange, Value::U32(u32::MAX))],
        Kind::Uint64 | Kind::Fixed64 => vec![(Probe::OutOfRange, Value::U64(u64::MAX))],
        Kind::Message(inner) if inner.full_name() == "google.protobuf.Timestamp" => {
            let mut far = DynamicMessage::new(inner);
            far.set_field_by_name("seconds", Value::I64(i64::MAX));
            far.set_field_by_name("nanos", Value::I32(-1));
            vec![(Probe::OutOfRange, Value::Message(far))]
        }
        Kind::Message(inner) => vec![(Probe::Empty, Value::Message(DynamicMessage::new(inner)))],
        _ => Vec::new(),
    }
}

fn put_key(body: &mut Vec<u8>, number: u32, wire_type: u32) {
    put_varint(body, u64::from(number << 3 | wire_type));
}

fn put_varint(body: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        body.push((value as u8) | 0x80);
        value >>= 7;
    }
    body.push(value as u8);
}

/// A codec that passes encoded messages through untouched, for calls whose bodies a test writes itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, tonic::Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// Sends `body` to the RPC at `path` over gRPC; a streaming RPC's answer is its first message (or status).
pub async fn call(
    channel: tonic::transport::Channel,
    path: &str,
    streaming: bool,
    body: Vec<u8>,
    headers: &[(&'static str, String)],
) -> Result<Bytes, tonic::Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|error| tonic::Status::unavailable(error.to_string()))?;
    let mut request = tonic::Request::new(body);
    for (name, value) in headers {
        request.metadata_mut().insert(*name, value.parse().expect("header value"));
    }
    let path = path.parse().expect("a gRPC path");
    if streaming {
        let mut stream = grpc.server_streaming(request, path, RawCodec).await?.into_inner();
        // A stream that opens must say something at once (its first state), or the probe would hang.
        let first = tokio::time::timeout(std::time::Duration::from_secs(10), stream.message()).await;
        Ok(first.map_err(|_| tonic::Status::deadline_exceeded("no first message in 10 s"))??.unwrap_or_default())
    } else {
        Ok(grpc.unary(request, path, RawCodec).await?.into_inner())
    }
}
