//! Property tests of the codecs: every finite float back bit for bit, our bincode decoder
//! reading exactly what bincode writes (and refusing what bincode's decoder refuses), and
//! random or mutated bytes never taking the process down.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

#[cfg(feature = "bincode")]
use super::BincodeCodec;
use super::{Codec, JsonCodec};

/// A value with every serde shape the derives produce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Everything {
    b: bool,
    u8_: u8,
    i8_: i8,
    u16_: u16,
    i16_: i16,
    u32_: u32,
    i32_: i32,
    u64_: u64,
    i64_: i64,
    u128_: u128,
    i128_: i128,
    usize_: usize,
    f32_: f32,
    f64_: f64,
    c: char,
    s: String,
    bytes: Vec<u8>,
    opt: Option<Box<Everything>>,
    list: Vec<Shape>,
    map: BTreeMap<String, i64>,
    tuple: (u8, String, f64),
    unit: (),
    newtype: Newtype,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Newtype(i32);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Shape {
    Unit,
    New(u64),
    Tuple(i16, String),
    Struct { x: f64, y: Option<char> },
}

#[cfg(feature = "bincode")]
fn shape() -> impl Strategy<Value = Shape> {
    prop_oneof![
        Just(Shape::Unit),
        any::<u64>().prop_map(Shape::New),
        (any::<i16>(), ".{0,8}").prop_map(|(a, b)| Shape::Tuple(a, b)),
        (any::<f64>(), any::<Option<char>>()).prop_map(|(x, y)| Shape::Struct { x, y }),
    ]
}

#[cfg(feature = "bincode")]
fn leaf() -> impl Strategy<Value = Everything> {
    (
        (
            any::<bool>(),
            any::<u8>(),
            any::<i8>(),
            any::<u16>(),
            any::<i16>(),
            any::<u32>(),
        ),
        (
            any::<i32>(),
            any::<u64>(),
            any::<i64>(),
            any::<u128>(),
            any::<i128>(),
            any::<usize>(),
        ),
        (
            any::<f32>(),
            any::<f64>(),
            any::<char>(),
            ".{0,16}",
            prop::collection::vec(any::<u8>(), 0..16),
        ),
        (
            prop::collection::vec(shape(), 0..4),
            prop::collection::btree_map(".{0,4}", any::<i64>(), 0..4),
            (any::<u8>(), ".{0,4}", any::<f64>()),
            any::<i32>(),
        ),
    )
        .prop_map(|(a, b, c, d)| Everything {
            b: a.0,
            u8_: a.1,
            i8_: a.2,
            u16_: a.3,
            i16_: a.4,
            u32_: a.5,
            i32_: b.0,
            u64_: b.1,
            i64_: b.2,
            u128_: b.3,
            i128_: b.4,
            usize_: b.5,
            f32_: c.0,
            f64_: c.1,
            c: c.2,
            s: c.3,
            bytes: c.4,
            opt: None,
            list: d.0,
            map: d.1,
            tuple: d.2,
            unit: (),
            newtype: Newtype(d.3),
        })
}

#[cfg(feature = "bincode")]
fn everything() -> impl Strategy<Value = Everything> {
    (leaf(), prop::option::of(leaf())).prop_map(|(mut outer, inner)| {
        outer.opt = inner.map(Box::new);
        outer
    })
}

#[cfg(feature = "bincode")]
/// Floats compared by their bits (NaN payloads included).
fn same_bits(a: &Everything, b: &Everything) -> bool {
    let floats = |e: &Everything| {
        let mut v = vec![u64::from(e.f32_.to_bits()), e.f64_.to_bits(), e.tuple.2.to_bits()];
        v.extend(e.list.iter().filter_map(|s| match s {
            Shape::Struct { x, .. } => Some(x.to_bits()),
            _ => None,
        }));
        v
    };
    floats(a) == floats(b) && a.opt.as_deref().map(floats) == b.opt.as_deref().map(floats)
}

fn finite_f64() -> impl Strategy<Value = f64> {
    // Every bit pattern, subnormals and extremes included, NaN and infinities excluded.
    any::<u64>()
        .prop_map(f64::from_bits)
        .prop_filter("finite", |f| f.is_finite())
}

fn finite_f32() -> impl Strategy<Value = f32> {
    any::<u32>()
        .prop_map(f32::from_bits)
        .prop_filter("finite", |f| f.is_finite())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn every_finite_float_round_trips_bit_for_bit(x in finite_f64(), y in finite_f32()) {
        let bytes = JsonCodec.encode(&(x, y)).expect("json");
        let (bx, by): (f64, f32) = JsonCodec.decode(&bytes).expect("json back");
        prop_assert_eq!(bx.to_bits(), x.to_bits());
        prop_assert_eq!(by.to_bits(), y.to_bits());
        #[cfg(feature = "bincode")]
        {
            let bytes = BincodeCodec.encode(&(x, y)).expect("bincode");
            let (bx, by): (f64, f32) = BincodeCodec.decode(&bytes).expect("bincode back");
            prop_assert_eq!(bx.to_bits(), x.to_bits());
            prop_assert_eq!(by.to_bits(), y.to_bits());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[cfg(feature = "bincode")]
    #[test]
    fn our_bincode_decoder_reads_what_bincode_writes(value in everything()) {
        let bytes = BincodeCodec.encode(&value).expect("encode");
        let ours: Everything = BincodeCodec.decode(&bytes).expect("our decoder");
        let theirs: (Everything, usize) =
            bincode::serde::decode_from_slice(&bytes, bincode::config::standard()).expect("bincode's decoder");
        prop_assert!(same_bits(&ours, &value));
        prop_assert!(same_bits(&theirs.0, &value));
        // Equal apart from NaN (which is never equal to itself).
        if !bytes.is_empty() && format!("{value:?}") == format!("{ours:?}") {
            prop_assert_eq!(format!("{ours:?}"), format!("{:?}", theirs.0));
        }
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn mutated_bytes_never_panic_and_agree_with_bincode_when_both_accept(
        value in everything(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = BincodeCodec.encode(&value).expect("encode");
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let truncated = &bytes[..cut.index(bytes.len() + 1)];
        for input in [&bytes[..], truncated] {
            let ours = BincodeCodec.decode::<Everything>(input);
            let _ = BincodeCodec.decode::<Vec<String>>(input);
            let _ = BincodeCodec.decode::<BTreeMap<String, Vec<u8>>>(input);
            if let Ok(ours) = ours {
                // What we accept, bincode's own decoder accepts the same way.
                if let Ok((theirs, read)) =
                    bincode::serde::decode_from_slice::<Everything, _>(input, bincode::config::standard())
                {
                    prop_assert_eq!(read, input.len());
                    prop_assert_eq!(format!("{ours:?}"), format!("{theirs:?}"));
                }
            }
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        #[cfg(feature = "bincode")]
        {
            let _ = BincodeCodec.decode::<Everything>(&bytes);
            let _ = BincodeCodec.decode::<Vec<Shape>>(&bytes);
            let _ = BincodeCodec.decode::<String>(&bytes);
        }
        let _ = JsonCodec.decode::<Everything>(&bytes);
        let _ = JsonCodec.decode::<serde_json::Value>(&bytes);
    }
}
