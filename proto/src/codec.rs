//! The codec every generated client and server uses: prost encoding, as `tonic_prost::ProstCodec`, with
//! a smaller starting buffer. tonic gives each call (each open stream, for as long as it is open) an encode
//! buffer of this size; its default of 8 KiB made 10,000 idle `WatchAvailability` streams cost about 80 MiB,
//! while this contract's messages are mostly a few hundred bytes. Buffers still grow for larger messages.

use std::marker::PhantomData;

use tonic::codec::{BufferSettings, Codec};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder, prost::Message};

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
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(BUFFER_BYTES, YIELD_BYTES))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(BUFFER_BYTES, YIELD_BYTES))
    }
}
