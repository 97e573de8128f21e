//! Fault injection: random and mutated bytes into every decoder, on every embedded backend
//! and both codecs. Nothing may panic or abort; a snapshot that does not decode degrades
//! to a full replay (and equals it); an event that does not decode is a typed error naming
//! its stream, version and event type; bogus snapshot versions (0, `u64::MAX`) are
//! discarded, never overflowed.

mod common;

use common::invariants::{assert_snapshot_load_equals_replay, assert_stream_intact, Acknowledged};
use common::{expected_order, item, Order, OrderCreated};
use eventsource::{
    AggregateRepository, BincodeCodec, Codec, Error, EventDecodeError, EventStore, InMemoryEventStore,
    InMemorySnapshotStore, JsonCodec, Metadata, MissReason, NewEvent, Snapshot, SnapshotStore, SnapshotUse,
    SqliteEventStore, SqliteSnapshotStore,
};
use proptest::prelude::*;
use uuid::Uuid;

/// Creates an order of `items` items saved in strides of 3 with snapshots every 5 events;
/// returns its id and the acknowledged event ids.
fn create<ES: EventStore, SS: SnapshotStore>(
    repo: &AggregateRepository<Order, ES, SS>,
    items: u64,
) -> (Uuid, Acknowledged) {
    let id = Uuid::now_v7();
    let mut ack = Acknowledged::default();
    let mut root = repo.load_or_create(id).expect("load_or_create");
    root.record(OrderCreated { customer_id: id });
    for n in 1..=items {
        root.record(item(n));
        if n % 3 == 0 || n == items {
            let ids = root.uncommitted_event_ids().to_vec();
            repo.save(&mut root).expect("save");
            ack.event_ids.extend(ids);
        }
    }
    (id, ack)
}

/// A repository snapshotting every 5 events.
fn repo<ES: EventStore + Clone, SS: SnapshotStore + Clone>(es: &ES, ss: &SS) -> AggregateRepository<Order, ES, SS> {
    AggregateRepository::<Order, _>::new(es.clone())
        .with_snapshot_store(ss.clone())
        .snapshot_threshold(5)
        .expect("threshold")
}

fn expected(id: Uuid, items: u64) -> Order {
    let mut o = expected_order(id, items);
    o.customer_id = Some(id);
    o
}

/// Replaces the stored snapshot's state by `corrupt(state)` and loads: never a panic; a
/// snapshot that no longer decodes is discarded and the load equals the full replay.
fn corrupt_snapshot<ES, SS>(es: &ES, ss: &SS, corrupt: impl FnOnce(&mut Vec<u8>)) -> Result<(), TestCaseError>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    let repo = repo(es, ss);
    let (id, ack) = create(&repo, 12);
    let stored = ss
        .get_snapshot(id, "Order")
        .expect("get")
        .expect("a snapshot was taken");
    let mut state = stored.state.clone();
    corrupt(&mut state);
    ss.delete_snapshot(id, "Order").expect("delete");
    if ss
        .save_snapshot(&Snapshot {
            state,
            ..stored.clone()
        })
        .is_err()
    {
        // The store refused the bytes (not valid JSON for a JSON column): nothing to load.
        return Ok(());
    }
    let (root, outcome) = repo
        .load_with_outcome(id)
        .expect("a corrupt snapshot never fails a load");
    if outcome.snapshot == SnapshotUse::Discarded(MissReason::DecodeFailed) {
        prop_assert_eq!(root.state(), &expected(id, 12));
        prop_assert_eq!(root.version(), 13);
    }
    assert_stream_intact(es, "Order", id, &ack);
    Ok(())
}

/// Appends an `ItemAdded` whose payload is `payload` and loads: Ok (the bytes happened to
/// decode) or a typed error naming the stream, the version and the event type.
fn corrupt_event<ES, SS>(es: &ES, ss: &SS, event_type: &str, payload: Vec<u8>) -> Result<(), TestCaseError>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    let repo = repo(es, ss);
    let (id, _) = create(&repo, 4);
    let bad = NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload,
        metadata: Metadata::default(),
    };
    if es.append(id, "Order", 5, &[bad]).is_err() {
        // The store refused the bytes (not valid JSON for a JSON column).
        return Ok(());
    }
    match repo.load(id) {
        Ok(root) => prop_assert_eq!(root.version(), 6),
        Err(Error::EventDecode {
            aggregate_type,
            aggregate_id,
            version,
            event_type: stored_type,
            source,
        }) => {
            prop_assert_eq!(aggregate_type.as_str(), "Order");
            prop_assert_eq!(aggregate_id, id);
            prop_assert_eq!(version, 6);
            prop_assert_eq!(stored_type.as_str(), event_type);
            if event_type != "ItemAdded" {
                prop_assert!(matches!(*source, EventDecodeError::UnknownEventType { .. }), "{source}");
            }
        }
        Err(other) => prop_assert!(false, "expected an EventDecode error, got {other}"),
    }
    Ok(())
}

fn mutate(bytes: &mut Vec<u8>, flips: &[(prop::sample::Index, u8)], cut: Option<prop::sample::Index>) {
    if bytes.is_empty() {
        return;
    }
    for (at, b) in flips {
        let i = at.index(bytes.len());
        bytes[i] = *b;
    }
    if let Some(cut) = cut {
        let n = cut.index(bytes.len());
        bytes.truncate(n);
    }
}

/// A bincode length prefix announcing u64::MAX bytes: bincode's own decoder would try to
/// allocate that much and abort the process.
fn huge_prefix() -> Vec<u8> {
    let mut b = vec![253u8];
    b.extend_from_slice(&u64::MAX.to_le_bytes());
    b.extend_from_slice(b"x");
    b
}

macro_rules! backends {
    ($($name:ident: $make:expr;)*) => {$(
        mod $name {
            use super::*;

            proptest! {
                #![proptest_config(ProptestConfig { cases: 24, max_shrink_iters: 64, ..ProptestConfig::default() })]

                #[test]
                fn mutated_snapshot_state(
                    flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                    cut in prop::option::of(any::<prop::sample::Index>()),
                ) {
                    let (es, ss, _guard) = $make;
                    corrupt_snapshot(&es, &ss, |s| mutate(s, &flips, cut))?;
                }

                #[test]
                fn random_snapshot_state(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                    let (es, ss, _guard) = $make;
                    corrupt_snapshot(&es, &ss, |s| *s = bytes)?;
                }

                #[test]
                fn random_event_payload(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
                    let (es, ss, _guard) = $make;
                    corrupt_event(&es, &ss, "ItemAdded", bytes)?;
                }

                #[test]
                fn mutated_event_payload(
                    flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
                    cut in prop::option::of(any::<prop::sample::Index>()),
                ) {
                    let (es, ss, _guard) = $make;
                    let mut payload = es.codec().encode(&item(7)).expect("encode");
                    mutate(&mut payload, &flips, cut);
                    corrupt_event(&es, &ss, "ItemAdded", payload)?;
                }
            }

            #[test]
            fn huge_length_prefixes_are_errors_not_allocations() {
                let (es, ss, _guard) = $make;
                corrupt_snapshot(&es, &ss, |s| *s = huge_prefix()).expect("snapshot");
                corrupt_event(&es, &ss, "ItemAdded", huge_prefix()).expect("event");
                corrupt_event(&es, &ss, "NoSuchEvent", b"{}".to_vec()).expect("unknown type");
            }

            #[test]
            fn bogus_snapshot_versions_are_discarded() {
                let (es, ss, _guard) = $make;
                let repo = repo(&es, &ss);
                let (id, ack) = create(&repo, 6);
                let good = ss.get_snapshot(id, "Order").expect("get").expect("snapshot");
                for version in [0, u64::MAX, i64::MAX as u64] {
                    ss.delete_snapshot(id, "Order").expect("delete");
                    if ss.save_snapshot(&Snapshot { version, ..good.clone() }).is_err() {
                        continue; // the store cannot hold that version at all
                    }
                    let (root, outcome) = repo.load_with_outcome(id).expect("load");
                    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::AheadOfStream), "version {version}");
                    assert_eq!(root.state(), &expected(id, 6));
                }
                assert_stream_intact(&es, "Order", id, &ack);
                assert_snapshot_load_equals_replay(&repo, &es, id);
            }
        }
    )*};
}

fn memory<C: Codec + Default>() -> (InMemoryEventStore<C>, InMemorySnapshotStore<C>, ()) {
    (
        InMemoryEventStore::with_codec(C::default()),
        InMemorySnapshotStore::with_codec(C::default()),
        (),
    )
}

fn sqlite<C: Codec + Default>() -> (SqliteEventStore<C>, SqliteSnapshotStore<C>, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let es = SqliteEventStore::open_with_codec(dir.path().join("es.db"), C::default()).expect("open");
    let ss = es.snapshot_store();
    (es, ss, dir)
}

backends! {
    memory_json: memory::<JsonCodec>();
    memory_bincode: memory::<BincodeCodec>();
    sqlite_json: sqlite::<JsonCodec>();
    sqlite_bincode: sqlite::<BincodeCodec>();
}
