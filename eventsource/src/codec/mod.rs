//! Codecs turn events and aggregate state into bytes and back.
//!
//! [`JsonCodec`] is the default and matches the reference schema (`JSONB` on PostgreSQL,
//! `TEXT` on SQLite). `BincodeCodec` (feature `bincode`) is the compact option (bincode 2,
//! serde mode); with it `state` and `payload` columns are `BYTEA` / `BLOB`.
//!
//! Events are stored as their event type (in its own column) plus a payload holding the
//! event's own fields only, so payloads never need a self-describing format and any codec
//! decodes them.
//!
//! ## Floats
//!
//! Every finite `f64` and `f32` comes back bit for bit through both codecs: JSON is written
//! with the shortest text that parses back to the same number and parsed exactly
//! (`serde_json`'s `float_roundtrip`), bincode stores the bits. JSON has no NaN and no
//! infinity: [`JsonCodec`] refuses such a value with a [`CodecError`] whose `path` names the
//! field (`lines[2].price`), and a save of an event holding one fails with
//! [`Error::EventEncode`](crate::Error::EventEncode) before anything is written (a snapshot
//! state holding one is not snapshotted; loads replay). bincode stores them as they are.
//!
//! PostgreSQL keeps JSON numbers in `JSONB` as exact decimals, so finite floats survive it
//! too, with one exception: `-0.0` comes back as `0.0` (a decimal has no negative zero).
//! The two compare equal (`-0.0 == 0.0`), and a load through a snapshot and a full replay
//! still agree; where the sign of zero matters, use bincode or keep the sign in a field of
//! its own.
//!
//! ## Corrupt bytes
//!
//! Decoding never trusts a length: `BincodeCodec` decodes with a decoder of our own that
//! checks every length prefix against the bytes that remain before it allocates, so a
//! damaged snapshot or event is an error (a snapshot then degrades to a replay), never a
//! process abort.

use serde::{de::DeserializeOwned, Serialize};

use crate::error::CodecError;

#[cfg(feature = "bincode")]
mod bincode_de;
mod finite;

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
        let json = serde_json::to_vec(value).map_err(|e| CodecError::new(Self::NAME, e))?;
        // serde_json writes NaN and the infinities as `null`: look closer only then.
        if contains_null(&json) {
            if let Some(found) = finite::find_non_finite(value) {
                return Err(CodecError::non_finite(Self::NAME, found.path, &found.value));
            }
        }
        Ok(json)
    }

    /// Checks the whole text as UTF-8 once, then parses it as a `str`: `serde_json` then
    /// does not check each string again (one pass over the bytes instead of one call per
    /// string, a few percent of a replay).
    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        let text = std::str::from_utf8(bytes)
            .map_err(|e| CodecError::new(Self::NAME, format!("the JSON text is not UTF-8: {e}")))?;
        serde_json::from_str(text).map_err(|e| CodecError::new(Self::NAME, e))
    }
}

/// bincode 2 in serde mode (standard configuration: little endian, variable-length
/// integers). Compact and fast; not self-describing, so a state type change that is not
/// declared through `schema_version` fails to decode (and falls back to replay) instead of
/// silently misreading.
#[cfg(feature = "bincode")]
#[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
#[derive(Debug, Clone, Copy, Default)]
pub struct BincodeCodec;

#[cfg(feature = "bincode")]
impl Codec for BincodeCodec {
    const NAME: &'static str = "bincode";
    const FORMAT: Format = Format::Binary;

    fn encode<T: Serialize + ?Sized>(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard()).map_err(|e| CodecError::new(Self::NAME, e))
    }

    fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        bincode_de::decode_from_slice(bytes).map_err(|e| CodecError::new(Self::NAME, e))
    }
}

/// Whether JSON text contains the literal `null` (outside strings or not: a cheap test
/// that never misses one).
fn contains_null(json: &[u8]) -> bool {
    json.windows(4).any(|w| w == b"null")
}

#[cfg(test)]
mod properties;

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
    fn json_text_that_is_not_utf8_is_a_codec_error() {
        // Invalid UTF-8 inside a string, and outside one.
        for bytes in [&b"{\"sku\":\"A\xff\",\"qty\":1,\"price_cents\":2}"[..], &b"\xc3("[..]] {
            let err = JsonCodec.decode::<Item>(bytes).expect_err("not UTF-8");
            assert_eq!(err.codec, JsonCodec::NAME);
            assert!(err.message.contains("not UTF-8"), "{err}");
        }
        // Valid UTF-8 beyond ASCII still decodes.
        let item: Item = JsonCodec
            .decode("{\"sku\":\"Ä-1 ✓\",\"qty\":1,\"price_cents\":2}".as_bytes())
            .expect("decode");
        assert_eq!(item.sku, "Ä-1 ✓");
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_round_trips() {
        round_trip(BincodeCodec);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_rejects_trailing_bytes() {
        let mut bytes = BincodeCodec.encode(&7u32).expect("encode");
        bytes.push(0);
        let err = BincodeCodec.decode::<u32>(&bytes).expect_err("trailing");
        assert!(err.message.contains("trailing"), "{err}");
    }

    #[test]
    fn json_refuses_non_finite_floats_with_the_path() {
        #[derive(Serialize)]
        struct Priced {
            sku: String,
            price: f64,
            note: Option<String>,
        }
        for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let err = JsonCodec
                .encode(&Priced {
                    sku: "A".into(),
                    price: bad,
                    note: None,
                })
                .expect_err("non-finite");
            assert_eq!(err.path.as_deref(), Some("price"), "{err}");
            assert!(err.is_non_finite_float());
        }
        // A real null is fine.
        let ok = JsonCodec.encode(&Priced {
            sku: "null".into(),
            price: 1.0,
            note: None,
        });
        assert!(ok.is_ok());
        // bincode keeps them, bit for bit.
        #[cfg(feature = "bincode")]
        {
            let bytes = BincodeCodec.encode(&f64::NAN).expect("encode");
            assert!(BincodeCodec.decode::<f64>(&bytes).expect("decode").is_nan());
        }
    }

    #[test]
    fn extreme_floats_round_trip() {
        let values = [
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            5e-324,
            -5e-324,
            f64::from_bits(0x000F_FFFF_FFFF_FFFF), // the largest subnormal
            0.1 + 0.2,
            1.0 / 3.0,
            19.99 * 1.0825,
            -0.0,
        ];
        for v in values {
            let json: f64 = JsonCodec
                .decode(&JsonCodec.encode(&v).expect("json"))
                .expect("json back");
            assert_eq!(json.to_bits(), v.to_bits(), "json {v:e}");
            #[cfg(feature = "bincode")]
            {
                let bin: f64 = BincodeCodec
                    .decode(&BincodeCodec.encode(&v).expect("bincode"))
                    .expect("bincode back");
                assert_eq!(bin.to_bits(), v.to_bits(), "bincode {v:e}");
            }
        }
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_corrupt_length_prefix_is_an_error_not_an_allocation() {
        // A string announcing u64::MAX bytes, then a Vec<String> announcing 2^60 elements.
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(b"abc");
        assert!(BincodeCodec.decode::<String>(&bytes).is_err());
        let mut bytes = vec![253u8];
        bytes.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(BincodeCodec.decode::<Vec<String>>(&bytes).is_err());
        assert!(BincodeCodec.decode::<Vec<()>>(&bytes).is_err());
        assert!(BincodeCodec
            .decode::<std::collections::HashMap<String, u8>>(&bytes)
            .is_err());
    }

    #[test]
    fn json_decode_error_names_codec() {
        let err = JsonCodec.decode::<Item>(b"{\"sku\":1}").expect_err("bad");
        assert_eq!(err.codec, "json");
    }
}
