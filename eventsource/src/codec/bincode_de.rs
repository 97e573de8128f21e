//! A bounded decoder of bincode 2's standard format (little endian, variable-length
//! integers), serde mode: the format [`BincodeCodec`](super::BincodeCodec) writes.
//!
//! bincode's own decoder trusts length prefixes: a corrupt prefix in front of a string or a
//! byte buffer makes it allocate whatever the prefix says (terabytes) and the process
//! aborts. A snapshot is only a cache and an event row can be damaged on disk, so this
//! decoder reads from the input slice only: every length is checked against the bytes that
//! remain before anything is allocated, strings and bytes are borrowed from the input
//! (their copies are never larger than the input), and sequence lengths only bound a loop
//! (serde caps what it reserves up front). Corrupt input is an error, never a panic, an
//! abort or an endless loop.
//!
//! The encoder stays bincode's own; the tests check that this decoder reads what it
//! writes exactly as bincode's decoder does, and rejects what it rejects.

use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

/// Why bytes did not decode.
#[derive(Debug)]
pub(crate) struct DecodeError(String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DecodeError {}

impl de::Error for DecodeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DecodeError(msg.to_string())
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError(msg.into()))
}

const SINGLE_BYTE_MAX: u8 = 250;
const U16_BYTE: u8 = 251;
const U32_BYTE: u8 = 252;
const U64_BYTE: u8 = 253;
const U128_BYTE: u8 = 254;

/// Elements a sequence may announce beyond the bytes that remain: elements of zero size
/// (unit structs) take no bytes, so a length cannot be bounded by the input alone; this
/// bounds the loop a corrupt length can cause.
const ZERO_SIZED_SLACK: u64 = 1 << 16;

/// Decodes a whole value from `input`; trailing bytes are an error.
pub(crate) fn decode_from_slice<'de, T: de::Deserialize<'de>>(input: &'de [u8]) -> Result<T, DecodeError> {
    let mut d = Decoder { input };
    let value = T::deserialize(&mut d)?;
    if !d.input.is_empty() {
        return fail(format!("{} trailing bytes after the value", d.input.len()));
    }
    Ok(value)
}

struct Decoder<'de> {
    input: &'de [u8],
}

impl<'de> Decoder<'de> {
    fn take(&mut self, n: usize) -> Result<&'de [u8], DecodeError> {
        if n > self.input.len() {
            return fail(format!(
                "unexpected end of input: {n} bytes needed, {} left",
                self.input.len()
            ));
        }
        let (head, tail) = self.input.split_at(n);
        self.input = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    fn byte(&mut self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    /// A varint of at most `max_width` bytes of payload (2, 4, 8 or 16), as u128.
    fn varint(&mut self, max_width: usize, what: &str) -> Result<u128, DecodeError> {
        let tag = self.byte()?;
        let (width, value) = match tag {
            0..=SINGLE_BYTE_MAX => return Ok(u128::from(tag)),
            U16_BYTE => (2, u128::from(u16::from_le_bytes(self.peek_array::<2>()?))),
            U32_BYTE => (4, u128::from(u32::from_le_bytes(self.peek_array::<4>()?))),
            U64_BYTE => (8, u128::from(u64::from_le_bytes(self.peek_array::<8>()?))),
            U128_BYTE => (16, u128::from_le_bytes(self.peek_array::<16>()?)),
            _ => return fail(format!("invalid varint tag {tag} for {what}")),
        };
        if width > max_width {
            return fail(format!("varint of {width} bytes is too wide for {what}"));
        }
        self.take(width)?;
        Ok(value)
    }

    fn peek_array<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        match self.input.get(..N) {
            Some(bytes) => {
                let mut out = [0u8; N];
                out.copy_from_slice(bytes);
                Ok(out)
            }
            None => fail(format!(
                "unexpected end of input: {N} bytes needed, {} left",
                self.input.len()
            )),
        }
    }

    fn unsigned<T: TryFrom<u128>>(&mut self, width: usize, what: &str) -> Result<T, DecodeError> {
        let v = self.varint(width, what)?;
        T::try_from(v).or_else(|_| fail(format!("{v} out of range for {what}")))
    }

    fn signed<T: TryFrom<i128>>(&mut self, width: usize, what: &str) -> Result<T, DecodeError> {
        let n = self.varint(width, what)?;
        // Zigzag: even is positive, odd is negative.
        let half = (n >> 1) as i128;
        let v = if n & 1 == 0 { half } else { !half };
        T::try_from(v).or_else(|_| fail(format!("{v} out of range for {what}")))
    }

    fn i128(&mut self) -> Result<i128, DecodeError> {
        let n = self.varint(16, "i128")?;
        let half = (n >> 1) as i128;
        Ok(if n & 1 == 0 { half } else { !half })
    }

    fn len(&mut self) -> Result<usize, DecodeError> {
        self.unsigned::<usize>(8, "a length")
    }

    /// The length of a string or byte buffer: never more than what remains.
    fn bytes(&mut self) -> Result<&'de [u8], DecodeError> {
        let n = self.len()?;
        self.take(n)
    }

    fn str(&mut self) -> Result<&'de str, DecodeError> {
        let bytes = self.bytes()?;
        std::str::from_utf8(bytes).or_else(|e| fail(format!("invalid UTF-8 in a string: {e}")))
    }

    /// A sequence length: elements take at least one byte unless they are zero-sized.
    fn seq_len(&mut self) -> Result<usize, DecodeError> {
        let n = self.len()?;
        let bound = (self.input.len() as u64).saturating_add(ZERO_SIZED_SLACK);
        if n as u64 > bound {
            return fail(format!(
                "sequence length {n} exceeds the {} bytes left",
                self.input.len()
            ));
        }
        Ok(n)
    }

    fn char(&mut self) -> Result<char, DecodeError> {
        let first = *self
            .input
            .first()
            .ok_or_else(|| DecodeError("unexpected end of input in a char".into()))?;
        let width = match first {
            0x00..=0x7F => 1,
            0xC2..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF4 => 4,
            _ => return fail(format!("invalid char encoding (first byte {first:#04x})")),
        };
        let bytes = self.take(width)?;
        match std::str::from_utf8(bytes).ok().and_then(|s| s.chars().next()) {
            Some(c) => Ok(c),
            None => fail(format!("invalid char encoding {bytes:?}")),
        }
    }
}

macro_rules! unsigned {
    ($($method:ident $visit:ident $t:ty, $w:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit(self.unsigned::<$t>($w, stringify!($t))?)
        }
    )*};
}

macro_rules! signed {
    ($($method:ident $visit:ident $t:ty, $w:expr;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.$visit(self.signed::<$t>($w, stringify!($t))?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Decoder<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DecodeError> {
        fail("bincode is not self-describing: a type that needs `deserialize_any` (untagged or internally tagged enums, `flatten`) cannot be decoded")
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.byte()? {
            0 => visitor.visit_bool(false),
            1 => visitor.visit_bool(true),
            b => fail(format!("invalid bool {b}")),
        }
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_u8(self.byte()?)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_i8(i8::from_le_bytes(self.array::<1>()?))
    }

    unsigned! {
        deserialize_u16 visit_u16 u16, 2;
        deserialize_u32 visit_u32 u32, 4;
        deserialize_u64 visit_u64 u64, 8;
        deserialize_u128 visit_u128 u128, 16;
    }

    signed! {
        deserialize_i16 visit_i16 i16, 2;
        deserialize_i32 visit_i32 i32, 4;
        deserialize_i64 visit_i64 i64, 8;
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_i128(self.i128()?)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f32(f32::from_le_bytes(self.array::<4>()?))
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_f64(f64::from_le_bytes(self.array::<8>()?))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_char(self.char()?)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_str(self.str()?)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_borrowed_bytes(self.bytes()?)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.byte()? {
            0 => visitor.visit_none(),
            1 => visitor.visit_some(self),
            b => fail(format!("invalid Option tag {b}")),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _: &'static str, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let len = self.seq_len()?;
        visitor.visit_seq(Elements { de: self, left: len })
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements { de: self, left: len })
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements { de: self, left: len })
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let len = self.seq_len()?;
        visitor.visit_map(Elements { de: self, left: len })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements {
            de: self,
            left: fields.len(),
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _: &'static str,
        _: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_enum(self)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DecodeError> {
        fail("bincode does not store identifiers")
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, DecodeError> {
        fail("bincode cannot skip a value of unknown shape")
    }

    fn is_human_readable(&self) -> bool {
        false
    }
}

/// The elements of a sequence, tuple, struct or map.
struct Elements<'a, 'de> {
    de: &'a mut Decoder<'de>,
    left: usize,
}

impl<'de> Elements<'_, 'de> {
    fn next<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DecodeError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        seed.deserialize(&mut *self.de).map(Some)
    }
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, DecodeError> {
        self.next(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::MapAccess<'de> for Elements<'_, 'de> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DecodeError> {
        self.next(seed)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DecodeError> {
        seed.deserialize(&mut *self.de)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.left)
    }
}

impl<'de> de::EnumAccess<'de> for &mut Decoder<'de> {
    type Error = DecodeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DecodeError> {
        let index = self.unsigned::<u32>(4, "an enum variant index")?;
        let value = seed.deserialize(index.into_deserializer())?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for &mut Decoder<'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DecodeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements { de: self, left: len })
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(Elements {
            de: self,
            left: fields.len(),
        })
    }
}
