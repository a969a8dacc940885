//! The codec every generated Prism service uses: prost's, except that a
//! request a server cannot decode is `INVALID_ARGUMENT` (the client sent
//! bad bytes) rather than prost's `INTERNAL`. A response a client cannot
//! decode stays `INTERNAL`: that is the server's fault, not the caller's.

use std::marker::PhantomData;

use tonic::{
    Code, Status,
    codec::{BufferSettings, Codec, DecodeBuf, Decoder},
};
use tonic_prost::{ProstCodec, ProstDecoder, ProstEncoder};

/// A [`ProstCodec`] whose server side reports undecodable requests as
/// `INVALID_ARGUMENT`.
#[derive(Debug, Clone)]
pub struct PrismCodec<T, U> {
    _types: PhantomData<(T, U)>,
}

impl<T, U> Default for PrismCodec<T, U> {
    fn default() -> Self {
        Self {
            _types: PhantomData,
        }
    }
}

impl<T, U> Codec for PrismCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = PrismDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        PrismDecoder {
            inner: ProstCodec::<T, U>::default().decoder(),
        }
    }
}

/// Decodes like prost; see [`PrismCodec`].
#[derive(Debug, Clone)]
pub struct PrismDecoder<U> {
    inner: ProstDecoder<U>,
}

impl<U: prost::Message + Default> Decoder for PrismDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.inner
            .decode(buf)
            .map_err(|status| from_decode_error::<U>(status))
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.inner.buffer_settings()
    }
}

/// Whether `U` is a message a server decodes: every Prism RPC takes a
/// message named `…Request` and returns one named otherwise (the `.proto`
/// files keep to that), so this tells the server's decoder from a client's.
fn is_request<U>() -> bool {
    std::any::type_name::<U>().ends_with("Request")
}

fn from_decode_error<U>(status: Status) -> Status {
    if status.code() == Code::Internal && is_request::<U>() {
        Status::invalid_argument(format!(
            "the request could not be decoded: {}",
            status.message()
        ))
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyvalue::v1::{GetRequest, GetResponse};

    #[test]
    fn only_requests_are_the_callers_fault() {
        let broken = || Status::internal("failed to decode Protobuf message: buffer underflow");
        let server = from_decode_error::<GetRequest>(broken());
        assert_eq!(server.code(), Code::InvalidArgument);
        assert!(
            server.message().contains("buffer underflow"),
            "{}",
            server.message()
        );
        let client = from_decode_error::<GetResponse>(broken());
        assert_eq!(client.code(), Code::Internal);
    }

    /// The rule [`is_request`] relies on, checked over every Prism RPC.
    #[test]
    fn every_rpc_takes_a_request_and_returns_something_else() {
        use prost::Message;
        let set = prost_types::FileDescriptorSet::decode(crate::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = 0;
        for file in &set.file {
            for service in &file.service {
                for method in &service.method {
                    let (input, output) = (method.input_type(), method.output_type());
                    assert!(input.ends_with("Request"), "{}: {input}", method.name());
                    assert!(!output.ends_with("Request"), "{}: {output}", method.name());
                    methods += 1;
                }
            }
        }
        assert!(methods >= 20, "{methods} methods found");
    }

    #[test]
    fn other_statuses_pass_through() {
        let status = from_decode_error::<GetRequest>(Status::resource_exhausted("too big"));
        assert_eq!(status.code(), Code::ResourceExhausted);
    }
}
