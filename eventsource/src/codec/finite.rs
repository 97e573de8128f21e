//! Finds a float JSON cannot represent (NaN, an infinity) in a value, with its path.
//!
//! `serde_json` writes such a float as `null` without an error; the stored value then no
//! longer decodes as the type and every later load fails. [`JsonCodec`](super::JsonCodec)
//! refuses the value instead. The walk only runs when the JSON it produced contains a
//! `null` (the only trace a non-finite float leaves), so ordinary values pay nothing for it.

use serde::ser::{self, Serialize};

/// The first non-finite float of a value: where it is (`items[2].price`; empty for the
/// value itself) and what it is (`NaN`, `inf`, `-inf`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NonFinite {
    pub path: String,
    pub value: String,
}

/// Walks `value` and returns its first non-finite float, if any.
pub(crate) fn find_non_finite<T: Serialize + ?Sized>(value: &T) -> Option<NonFinite> {
    match value.serialize(Walker) {
        Ok(()) => None,
        Err(Stop::Found { value, mut segments }) => {
            segments.reverse();
            Some(NonFinite {
                path: join(&segments),
                value,
            })
        }
        Err(Stop::Other) => None,
    }
}

enum Segment {
    Field(String),
    Index(usize),
}

fn join(segments: &[Segment]) -> String {
    let mut out = String::new();
    for s in segments {
        match s {
            Segment::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Segment::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Why the walk stopped. Segments are pushed while unwinding, innermost first.
#[derive(Debug)]
enum Stop {
    Found { value: String, segments: Vec<Segment> },
    Other,
}

impl std::fmt::Debug for Segment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Segment::Field(n) => write!(f, ".{n}"),
            Segment::Index(i) => write!(f, "[{i}]"),
        }
    }
}

impl std::fmt::Display for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("non-finite float")
    }
}

impl std::error::Error for Stop {}

impl ser::Error for Stop {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Stop::Other
    }
}

fn at<T>(result: Result<T, Stop>, segment: impl FnOnce() -> Segment) -> Result<T, Stop> {
    result.map_err(|e| match e {
        Stop::Found { value, mut segments } => {
            segments.push(segment());
            Stop::Found { value, segments }
        }
        other => other,
    })
}

fn check(v: f64) -> Result<(), Stop> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(Stop::Found {
            value: v.to_string(),
            segments: Vec::new(),
        })
    }
}

/// A serializer that produces nothing and stops at the first non-finite float.
struct Walker;

/// The compound state: the position within a sequence or the current map key.
struct Compound {
    index: usize,
    key: String,
}

impl Compound {
    fn new() -> Self {
        Compound {
            index: 0,
            key: String::new(),
        }
    }

    /// The compound of an enum variant: its name is the path segment of its fields.
    fn variant(name: &str) -> Self {
        Compound {
            index: 0,
            key: name.to_owned(),
        }
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let i = self.index;
        self.index += 1;
        at(value.serialize(Walker), || Segment::Index(i))
    }

    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), Stop> {
        at(value.serialize(Walker), || Segment::Field(name.to_owned()))
    }
}

impl ser::Serializer for Walker {
    type Ok = ();
    type Error = Stop;
    type SerializeSeq = Compound;
    type SerializeTuple = Compound;
    type SerializeTupleStruct = Compound;
    type SerializeTupleVariant = Compound;
    type SerializeMap = Compound;
    type SerializeStruct = Compound;
    type SerializeStructVariant = Compound;

    fn serialize_bool(self, _: bool) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i8(self, _: i8) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i16(self, _: i16) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i32(self, _: i32) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i64(self, _: i64) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_i128(self, _: i128) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u8(self, _: u8) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u16(self, _: u16) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u32(self, _: u32) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u64(self, _: u64) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_u128(self, _: u128) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), Stop> {
        check(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), Stop> {
        check(v)
    }
    fn serialize_char(self, _: char) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_str(self, _: &str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_none(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), Stop> {
        value.serialize(Walker)
    }
    fn serialize_unit(self) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_unit_variant(self, _: &'static str, _: u32, _: &'static str) -> Result<(), Stop> {
        Ok(())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _: &'static str, value: &T) -> Result<(), Stop> {
        value.serialize(Walker)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), Stop> {
        at(value.serialize(Walker), || Segment::Field(variant.to_owned()))
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Compound, Stop> {
        Ok(Compound::new())
    }
    fn serialize_tuple(self, _: usize) -> Result<Compound, Stop> {
        Ok(Compound::new())
    }
    fn serialize_tuple_struct(self, _: &'static str, _: usize) -> Result<Compound, Stop> {
        Ok(Compound::new())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Stop> {
        Ok(Compound::variant(variant))
    }
    fn serialize_map(self, _: Option<usize>) -> Result<Compound, Stop> {
        Ok(Compound::new())
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Compound, Stop> {
        Ok(Compound::new())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
        _: usize,
    ) -> Result<Compound, Stop> {
        Ok(Compound::variant(variant))
    }
}

/// The compounds whose elements are positional: each element is an index of the path.
macro_rules! positional {
    ($($trait:ident $method:ident),*) => {$(
        impl ser::$trait for Compound {
            type Ok = ();
            type Error = Stop;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
                self.element(value)
            }
            fn end(self) -> Result<(), Stop> {
                Ok(())
            }
        }
    )*};
}

positional!(SerializeSeq serialize_element, SerializeTuple serialize_element, SerializeTupleStruct serialize_field);

impl ser::SerializeTupleVariant for Compound {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let variant = self.key.clone();
        at(self.element(value), || Segment::Field(variant))
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeMap for Compound {
    type Ok = ();
    type Error = Stop;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Stop> {
        // JSON keys are strings; serde_json writes numbers and the like as their text.
        self.key = serde_json::to_string(key)
            .map(|k| k.trim_matches('"').to_owned())
            .unwrap_or_else(|_| "?".to_owned());
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Stop> {
        let key = std::mem::take(&mut self.key);
        self.field(&key, value)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStruct for Compound {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
        self.field(name, value)
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for Compound {
    type Ok = ();
    type Error = Stop;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) -> Result<(), Stop> {
        let variant = self.key.clone();
        at(self.field(name, value), || Segment::Field(variant))
    }
    fn end(self) -> Result<(), Stop> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Serialize;

    use super::*;

    #[derive(Serialize)]
    struct Line {
        sku: String,
        price: f64,
    }

    #[derive(Serialize)]
    enum Kind {
        Priced { rate: f32 },
        Pair(f64, f64),
    }

    #[derive(Serialize)]
    struct Order {
        lines: Vec<Line>,
        rates: BTreeMap<String, f64>,
        kind: Option<Kind>,
    }

    fn order() -> Order {
        Order {
            lines: vec![
                Line {
                    sku: "a".into(),
                    price: 1.5,
                },
                Line {
                    sku: "b".into(),
                    price: 2.0,
                },
            ],
            rates: BTreeMap::from([("vat".to_owned(), 0.2)]),
            kind: None,
        }
    }

    #[test]
    fn finite_values_pass() {
        assert_eq!(find_non_finite(&order()), None);
        assert_eq!(find_non_finite(&f64::MAX), None);
        assert_eq!(find_non_finite(&-0.0f64), None);
    }

    #[test]
    fn the_path_names_the_field() {
        let mut o = order();
        o.lines[1].price = f64::NAN;
        let found = find_non_finite(&o).map(|f| (f.path, f.value));
        assert_eq!(found, Some(("lines[1].price".to_owned(), "NaN".to_owned())));

        let mut o = order();
        o.rates.insert("duty".into(), f64::NEG_INFINITY);
        assert_eq!(find_non_finite(&o).map(|f| f.path), Some("rates.duty".to_owned()));

        let mut o = order();
        o.kind = Some(Kind::Priced { rate: f32::INFINITY });
        assert_eq!(find_non_finite(&o).map(|f| f.path), Some("kind.Priced.rate".to_owned()));

        let mut o = order();
        o.kind = Some(Kind::Pair(1.0, f64::NAN));
        assert_eq!(find_non_finite(&o).map(|f| f.path), Some("kind.Pair[1]".to_owned()));

        assert_eq!(
            find_non_finite(&f64::INFINITY).map(|f| (f.path, f.value)),
            Some((String::new(), "inf".to_owned()))
        );
    }
}
