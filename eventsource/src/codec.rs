//! Codecs turn events and aggregate state into bytes and back.
//!
//! [`JsonCodec`] is the default and matches the reference schema (`JSONB` on PostgreSQL,
//! `TEXT` on SQLite). [`BincodeCodec`] is the compact option (bincode 2, serde mode); with it
//! `state` and `payload` columns are `BYTEA` / `BLOB`.
//!
//! Events are stored as their event type (in its own column) plus a payload holding the
//! event's own fields only, so payloads never need a self-describing format and any codec
//! decodes them.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::CodecError;

/// How a codec's output is stored in SQL columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// UTF-8 JSON text (`TEXT` / `JSONB`).
    Json,
    /// Opaque bytes (`BLOB` / `BYTEA`).
    Binary,
}

/// Serializes values to bytes and back.
pub trait Codec: Clone + Send + Sync + std::fmt::Debug + 'static {
    /// Short name, used in errors and logs.
    const NAME: &'static str;
    /// How the output is stored.
    const FORMAT: Format;
    /// Encodes a value.
    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError>;
    /// Decodes a value.
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError>;
}

/// JSON through `serde_json`: the default codec.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonCodec;

impl Codec for JsonCodec {
    const NAME: &'static str = "json";
    const FORMAT: Format = Format::Json;

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::new(Self::NAME, e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        serde_json::from_slice(bytes).map_err(|e| CodecError::new(Self::NAME, e))
    }
}

/// bincode 2 in serde mode (standard configuration: little endian, variable-length
/// integers). Compact and fast; not self-describing, so a state type change that is not
/// declared through `schema_version` fails to decode (and falls back to replay) instead of
/// silently misreading.
#[derive(Debug, Clone, Copy, Default)]
pub struct BincodeCodec;

impl Codec for BincodeCodec {
    const NAME: &'static str = "bincode";
    const FORMAT: Format = Format::Binary;

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| CodecError::new(Self::NAME, e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
            .map_err(|e| CodecError::new(Self::NAME, e))?;
        if read != bytes.len() {
            return Err(CodecError::new(
                Self::NAME,
                format!("{} trailing bytes after the value", bytes.len() - read),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Item {
        sku: String,
        qty: u32,
        price_cents: i64,
    }

    fn round_trip<C: Codec>(codec: C) {
        let item = Item {
            sku: "A-1".into(),
            qty: 3,
            price_cents: -250,
        };
        let bytes = codec.encode(&item).expect("encode");
        let back: Item = codec.decode(&bytes).expect("decode");
        assert_eq!(back, item);
    }

    #[test]
    fn json_round_trips() {
        round_trip(JsonCodec);
    }

    #[test]
    fn bincode_round_trips() {
        round_trip(BincodeCodec);
    }

    #[test]
    fn bincode_rejects_trailing_bytes() {
        let mut bytes = BincodeCodec.encode(&7u32).expect("encode");
        bytes.push(0);
        let err = BincodeCodec.decode::<u32>(&bytes).expect_err("trailing");
        assert!(err.message.contains("trailing"), "{err}");
    }

    #[test]
    fn json_decode_error_names_codec() {
        let err = JsonCodec.decode::<Item>(b"{\"sku\":1}").expect_err("bad");
        assert_eq!(err.codec, "json");
    }
}
