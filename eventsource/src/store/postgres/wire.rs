//! The one column type that needs a hand-written wire format: encoded bodies.
//!
//! Payloads, states and metadata travel as the codec produced them. For `JSONB` the binary
//! wire format is a version byte (`1`) followed by the JSON text, so the bytes go out and come
//! back without being parsed or re-serialized on the client. For `BYTEA` (the bincode codec)
//! and `JSON` the wire format is the bytes themselves.

use std::error::Error as StdError;

use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

/// The only `JSONB` binary format version PostgreSQL has defined.
const JSONB_VERSION: u8 = 1;

/// Encoded bytes for (or from) a `JSONB`, `JSON` or `BYTEA` column or array element.
///
/// Reading borrows from the row: replay hands payloads to the decoder without a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Body<'a>(pub &'a [u8]);

fn is_body_type(ty: &Type) -> bool {
    matches!(*ty, Type::JSONB | Type::JSON | Type::BYTEA)
}

impl ToSql for Body<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn StdError + Sync + Send>> {
        if *ty == Type::JSONB {
            out.reserve(self.0.len() + 1);
            out.put_u8(JSONB_VERSION);
        }
        out.extend_from_slice(self.0);
        Ok(IsNull::No)
    }

    fn accepts(ty: &Type) -> bool {
        is_body_type(ty)
    }

    to_sql_checked!();
}

impl<'a> FromSql<'a> for Body<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn StdError + Sync + Send>> {
        if *ty != Type::JSONB {
            return Ok(Body(raw));
        }
        match raw.split_first() {
            Some((&JSONB_VERSION, text)) => Ok(Body(text)),
            Some((version, _)) => Err(format!("unsupported JSONB binary format version {version}").into()),
            None => Err("empty JSONB value".into()),
        }
    }

    fn accepts(ty: &Type) -> bool {
        is_body_type(ty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jsonb_gets_the_version_byte_and_loses_it_on_the_way_back() -> Result<(), Box<dyn StdError + Sync + Send>> {
        let mut out = BytesMut::new();
        Body(br#"{"a":1}"#).to_sql(&Type::JSONB, &mut out)?;
        assert_eq!(&out[..], b"\x01{\"a\":1}");
        let back = Body::from_sql(&Type::JSONB, &out)?;
        assert_eq!(back.0, br#"{"a":1}"#);
        Ok(())
    }

    #[test]
    fn bytea_is_the_bytes() -> Result<(), Box<dyn StdError + Sync + Send>> {
        let mut out = BytesMut::new();
        Body(&[0, 1, 2]).to_sql(&Type::BYTEA, &mut out)?;
        assert_eq!(&out[..], &[0, 1, 2]);
        assert_eq!(Body::from_sql(&Type::BYTEA, &out)?.0, &[0, 1, 2]);
        Ok(())
    }

    #[test]
    fn unknown_jsonb_version_is_an_error() {
        assert!(Body::from_sql(&Type::JSONB, b"\x02{}").is_err());
        assert!(Body::from_sql(&Type::JSONB, b"").is_err());
        assert!(!<Body<'_> as ToSql>::accepts(&Type::INT4));
    }
}
