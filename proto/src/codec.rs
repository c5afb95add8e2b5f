//! The codec every generated client and server uses: prost encoding, as `tonic_prost::ProstCodec`, with
//! a smaller starting buffer. tonic gives each call (each open stream, for as long as it is open) an encode
//! buffer of this size; its default of 8 KiB made 10,000 idle `WatchAvailability` streams cost about 80 MiB,
//! while this contract's messages are mostly a few hundred bytes. Buffers still grow for larger messages.

use std::marker::PhantomData;

use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder, prost::Message};

/// Which side of an RPC a message travels: generated for every request and response of the contract.
pub trait Side {
    /// A request, decoded by the server: a body that does not decode is the caller's fault.
    const IS_REQUEST: bool;
}

include!(concat!(env!("OUT_DIR"), "/message_sides.rs"));

/// Starting size of a call's encode and decode buffers.
pub const BUFFER_BYTES: usize = 1024;
/// Encoded bytes a stream buffers before yielding them (tonic's default).
const YIELD_BYTES: usize = 32 * 1024;

/// Prost encoding with [`BUFFER_BYTES`] buffers.
#[derive(Debug, Clone, Copy)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Side + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = SideDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER_BYTES, YIELD_BYTES))
    }

    fn decoder(&mut self) -> Self::Decoder {
        SideDecoder(ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER_BYTES, YIELD_BYTES)))
    }
}

/// Prost decoding that answers a request body which is not the RPC's message (invalid UTF-8 in a string,
/// a wrong wire type, garbage) with `INVALID_ARGUMENT`, as the caller's error. tonic's `INTERNAL` is kept
/// for responses: a response that does not decode is the server's fault.
#[derive(Debug)]
pub struct SideDecoder<U>(ProstDecoder<U>);

impl<U: Message + Default + Side> Decoder for SideDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf).map_err(|status| match status.code() {
            Code::Internal if U::IS_REQUEST => Status::invalid_argument(format!(
                "the request body is not a valid {}: {}",
                std::any::type_name::<U>().rsplit("::").next().unwrap_or("message"),
                status.message()
            )),
            _ => status,
        })
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}
