// The conformance suite's body, included once per API by `mod.rs`: `aw!` awaits in the
// async API and is transparent in the sync one; `api_fn!` makes functions async there.

type Repo<A, ES, SS> = AggregateRepository<A, Arc<ES>, Arc<SS>>;

fn repo<A: eventsource::Aggregate, ES: EventStore, SS: SnapshotStore>(
    es: &Arc<ES>,
    ss: &Arc<SS>,
    threshold: u64,
) -> Repo<A, ES, SS> {
    AggregateRepository::new(Arc::clone(es))
        .with_snapshot_store(Arc::clone(ss))
        .snapshot_threshold(threshold)
        .expect("threshold")
}

// Creates an order with `items` items, saving after every `stride` recorded events.
api_fn! { fn create_order<ES: EventStore, SS: SnapshotStore>(repo: &Repo<Order, ES, SS>, items: u64, stride: u64) -> (Uuid, Uuid) {
    let id = Uuid::now_v7();
    let customer = Uuid::now_v7();
    let mut root = aw!(repo.load_or_create(id)).expect("load_or_create");
    root.record(OrderCreated { customer_id: customer });
    for n in 1..=items {
        if root.uncommitted_events().len() as u64 >= stride {
            aw!(repo.save(&mut root)).expect("save");
        }
        root.record(item(n));
    }
    aw!(repo.save(&mut root)).expect("save");
    (id, customer)
}}

fn new_event(event_type: &str, payload: &[u8]) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: payload.to_vec(),
        metadata: Metadata::default(),
    }
}

fn payload<ES: EventStore>(es: &ES, n: u64) -> Vec<u8> {
    use eventsource::EventSet;
    let event: <Order as eventsource::Aggregate>::Event = item(n).into();
    event.encode_payload(es.codec()).expect("encode")
}

api_fn! { fn read_all<ES: EventStore>(es: &ES, id: Uuid, after: u64) -> Vec<eventsource::StoredEvent> {
    let mut out = Vec::new();
    aw!(es.read_stream(id, "Order", after, &mut |r| {
        out.push(r.to_owned()?);
        Ok(())
    }))
    .expect("read_stream");
    out
}}

api_fn! { pub fn append_and_read<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, _ss: Arc<SS>) {
    let id = Uuid::now_v7();
    let batch: Vec<NewEvent> = (1..=3).map(|n| new_event("ItemAdded", &payload(&*es, n))).collect();
    assert_eq!(aw!(es.append(id, "Order", 0, &batch)).expect("append"), 3);
    assert_eq!(aw!(es.stream_version(id, "Order")).expect("version"), 3);
    assert_eq!(aw!(es.stream_version(id, "Other")).expect("version"), 0, "streams are per aggregate type");
    let all = aw!(read_all(&*es, id, 0));
    assert_eq!(all.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3]);
    for (stored, sent) in all.iter().zip(&batch) {
        assert_eq!(stored.event_id, sent.event_id);
        // By value: JSONB normalizes the text (key order, spacing), bytes may differ.
        let decoded = stored.decode::<<Order as eventsource::Aggregate>::Event, _>(es.codec()).expect("decode");
        let resent = eventsource::EventSet::encode_payload(&decoded.event, es.codec()).expect("encode");
        assert_eq!(resent, sent.payload);
        assert_eq!(stored.event_type, "ItemAdded");
        assert_eq!(stored.aggregate_id, id);
        assert_eq!(stored.aggregate_type, "Order");
    }
    assert!(all.windows(2).all(|w| w[0].global_position < w[1].global_position));
    assert_eq!(aw!(read_all(&*es, id, 2)).iter().map(|e| e.version).collect::<Vec<_>>(), vec![3]);
    assert!(aw!(read_all(&*es, id, 3)).is_empty());
    let more = [new_event("ItemAdded", &payload(&*es, 4))];
    assert_eq!(aw!(es.append(id, "Order", 3, &more)).expect("append"), 4);
}}

api_fn! { pub fn conflict_is_reported_and_loses_nothing<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 100);
    let (id, _) = aw!(create_order(&repo, 2, 100));
    let mut a = aw!(repo.load(id)).expect("load a");
    let mut b = aw!(repo.load(id)).expect("load b");
    a.record(item(10));
    b.record(item(20));
    b.record(Shipped { carrier: "dhl".into() });
    aw!(repo.save(&mut a)).expect("first writer wins");
    match aw!(repo.save(&mut b)) {
        Err(Error::Conflict { expected, actual, aggregate_id, .. }) => {
            assert_eq!((expected, actual, aggregate_id), (3, 4, id));
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(b.uncommitted_events().len(), 2, "the loser keeps its events to retry");
    assert_eq!(b.committed_version(), 3);
    let stored = aw!(read_all(&*es, id, 0));
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[3].event_type, "ItemAdded");
    // Retry after reloading succeeds.
    let mut b = aw!(repo.load(id)).expect("reload");
    b.record(item(20));
    assert_eq!(aw!(repo.save(&mut b)).expect("retry").version, 5);
}}

api_fn! { pub fn duplicate_event_id_writes_nothing<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, _ss: Arc<SS>) {
    let id = Uuid::now_v7();
    let first = new_event("ItemAdded", &payload(&*es, 1));
    aw!(es.append(id, "Order", 0, std::slice::from_ref(&first))).expect("append");
    // The same id again in the same stream: refused by every store, named, nothing written.
    let mut again = new_event("ItemAdded", &payload(&*es, 2));
    again.event_id = first.event_id;
    match aw!(es.append(id, "Order", 1, std::slice::from_ref(&again))) {
        Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, first.event_id),
        r => panic!("expected DuplicateEvent, got {r:?}"),
    }
    assert_eq!(aw!(es.stream_version(id, "Order")).expect("version"), 1);
    // In another stream: a duplicate where ids are unique across aggregates, another
    // event where they are unique per aggregate (PostgreSQL's partitioned layout).
    let other = Uuid::now_v7();
    match (aw!(es.append(other, "Order", 0, &[again])), event_ids_per_aggregate()) {
        (Err(Error::DuplicateEvent { event_id }), false) => {
            assert_eq!(event_id, first.event_id);
            assert_eq!(aw!(es.stream_version(other, "Order")).expect("version"), 0);
        }
        (Ok(1), true) => assert_eq!(aw!(es.stream_version(other, "Order")).expect("version"), 1),
        (r, per_aggregate) => panic!("unexpected (ids per aggregate: {per_aggregate}): {r:?}"),
    }
}}

api_fn! { pub fn batch_is_atomic<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, _ss: Arc<SS>) {
    let id = Uuid::now_v7();
    let existing = new_event("ItemAdded", &payload(&*es, 1));
    aw!(es.append(id, "Order", 0, std::slice::from_ref(&existing))).expect("append");
    // A batch whose fourth event repeats a stored id (of this stream, a duplicate in every
    // store) writes none of its events.
    let mut batch: Vec<NewEvent> = (1..=5).map(|n| new_event("ItemAdded", &payload(&*es, n))).collect();
    batch[3].event_id = existing.event_id;
    assert!(matches!(aw!(es.append(id, "Order", 1, &batch)), Err(Error::DuplicateEvent { .. })));
    assert_eq!(aw!(es.stream_version(id, "Order")).expect("version"), 1, "no partial batch");
    assert_eq!(aw!(read_all(&*es, id, 0)).len(), 1);
    // A stale expected version writes nothing either.
    let ok: Vec<NewEvent> = (1..=2).map(|n| new_event("ItemAdded", &payload(&*es, n))).collect();
    aw!(es.append(id, "Order", 1, &ok)).expect("append");
    let stale: Vec<NewEvent> = (1..=3).map(|n| new_event("ItemAdded", &payload(&*es, n))).collect();
    assert!(matches!(aw!(es.append(id, "Order", 2, &stale)), Err(Error::Conflict { expected: 2, actual: 3, .. })));
    assert_eq!(aw!(es.stream_version(id, "Order")).expect("version"), 3);
}}

api_fn! { pub fn metadata_and_timestamps_round_trip<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 100);
    let id = Uuid::now_v7();
    let mut root = aw!(repo.load_or_create(id)).expect("load");
    // An event occurs when it is recorded (its time survives a retried save).
    let before = eventsource::time::now();
    root.record(OrderCreated { customer_id: id });
    let meta = root.metadata_mut();
    meta.correlation_id = Some(Uuid::now_v7());
    meta.causation_id = Some(Uuid::now_v7());
    meta.actor_id = Some("user-7".into());
    meta.tenant_id = Some("acme".into());
    meta.extra.insert("source".into(), "test".into());
    let sent = root.metadata().clone();
    aw!(repo.save(&mut root)).expect("save");
    let after = eventsource::time::now();
    let stored = aw!(read_all(&*es, id, 0));
    assert_eq!(stored[0].metadata, sent);
    assert!(root.metadata().is_empty(), "metadata is cleared after a save");
    assert!(stored[0].occurred_at >= before && stored[0].occurred_at <= after);
    assert!(stored[0].stored_at >= stored[0].occurred_at);
    assert_eq!(stored[0].occurred_at.timestamp_subsec_nanos() % 1000, 0, "microsecond precision");
    let envelope = stored[0].decode::<<Order as eventsource::Aggregate>::Event, _>(es.codec()).expect("decode");
    assert_eq!(envelope.version, 1);
    assert_eq!(envelope.event_id.get_version_num(), 7, "event ids are UUID v7");
}}

api_fn! { pub fn not_found_and_load_or_create<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 100);
    let id = Uuid::now_v7();
    assert!(matches!(aw!(repo.load(id)), Err(Error::NotFound { .. })));
    assert!(!aw!(repo.exists(id)).expect("exists"));
    let root = aw!(repo.load_or_create(id)).expect("create");
    assert_eq!((root.version(), root.state()), (0, &Order::default()));
    let (id, customer) = aw!(create_order(&repo, 3, 100));
    assert!(aw!(repo.exists(id)).expect("exists"));
    assert_eq!(aw!(repo.load(id)).expect("load").state(), &expected_order(customer, 3));
}}

api_fn! { pub fn stride_six_threshold_fifty<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 50);
    let id = Uuid::now_v7();
    let mut root = aw!(repo.load_or_create(id)).expect("load");
    root.record(OrderCreated { customer_id: id });
    assert_eq!(aw!(repo.save(&mut root)).expect("save").snapshot, SnapshotAction::None);
    let mut taken = Vec::new();
    let mut n = 0;
    while root.version() + 6 <= 400 {
        for _ in 0..6 {
            n += 1;
            root.record(item(n));
        }
        let out = aw!(repo.save(&mut root)).expect("save");
        if out.snapshot == SnapshotAction::Written {
            let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
            assert_eq!(s.version, out.version, "one snapshot at the version reached");
            taken.push(out.version);
        }
    }
    assert_eq!(taken, vec![55, 103, 151, 205, 253, 301, 355]);
    assert_eq!(repo.stats().writes, 7);
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 355 });
    assert_eq!(outcome.events_replayed, root.version() - 355);
    assert_eq!(root.state(), &expected_order(id, n));
}}

api_fn! { pub fn multi_boundary_save_writes_one_snapshot<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 10);
    let (id, customer) = aw!(create_order(&repo, 34, 1000));
    let stats = repo.stats();
    assert_eq!(stats.writes, 1, "one snapshot for a save crossing 10, 20 and 30");
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
    assert_eq!((s.version, s.schema_version), (35, 2));
    let state: Order = ss.codec().decode(&s.state).map_err(|e| e.to_string()).expect("decode");
    assert_eq!(state, expected_order(customer, 34));
}}

api_fn! { pub fn snapshot_state_equals_replay<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    // Through the real command path: record applies at once, and the snapshot is taken
    // from that state, never from applying the batch again.
    let repo = repo::<Order, _, _>(&es, &ss, 7);
    for stride in [1, 3, 7, 10] {
        let (id, customer) = aw!(create_order(&repo, 40, stride));
        let (with, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
        assert!(matches!(outcome.snapshot, SnapshotUse::Used { .. }), "{outcome:?}");
        let plain = AggregateRepository::<Order, _>::new(Arc::clone(&es));
        let replayed = aw!(plain.load(id)).expect("replay");
        assert_eq!(with.state(), replayed.state());
        assert_eq!(with.version(), replayed.version());
        assert_eq!(with.state(), &expected_order(customer, 40));
        let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
        assert!(s.version <= replayed.version(), "snapshot never beyond the stream");
    }
}}

api_fn! { pub fn decode_failure_falls_back_and_repairs<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 1000);
    let (id, customer) = aw!(create_order(&repo, 9, 100));
    let garbage = ss.codec().encode(&vec!["not", "an", "order"]).expect("encode");
    aw!(ss.delete_snapshot(id, "Order")).expect("delete");
    let bad = Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version: 5,
        schema_version: 2,
        state: garbage,
        created_at: eventsource::time::now(),
    };
    aw!(ss.save_snapshot(&bad)).expect("plant");
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load falls back");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::DecodeFailed));
    assert_eq!(outcome.events_replayed, 10);
    assert!(outcome.repaired, "sync mode rewrites the snapshot");
    assert_eq!(root.state(), &expected_order(customer, 9));
    assert_eq!(repo.stats().misses(MissReason::DecodeFailed), 1);
    let (_, again) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(again.snapshot, SnapshotUse::Used { version: 10 });
    // A corrupt snapshot at the stream's own version is deleted, so the repair can
    // replace it (rule 4 alone would keep a stored snapshot against one at its version).
    aw!(ss.delete_snapshot(id, "Order")).expect("delete");
    let corrupt = Snapshot { version: 10, ..bad };
    aw!(ss.save_snapshot(&corrupt)).expect("plant");
    let (_, outcome) = aw!(repo.load_with_outcome(id)).expect("load falls back");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::DecodeFailed));
    assert!(outcome.repaired);
    let (_, again) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(again.snapshot, SnapshotUse::Used { version: 10 });
}}

api_fn! { pub fn schema_bump_without_upcast_replays_then_rewrites<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let v1 = repo::<OrderV1, _, _>(&es, &ss, 5);
    let id = Uuid::now_v7();
    let mut root = aw!(v1.load_or_create(id)).expect("load");
    root.record(OrderCreated { customer_id: id });
    for n in 1..=6 {
        root.record(item(n));
    }
    aw!(v1.save(&mut root)).expect("save");
    assert_eq!(aw!(ss.get_snapshot(id, "Order")).expect("get").map(|s| s.schema_version), Some(1));
    let v2 = repo::<OrderNoUpcast, _, _>(&es, &ss, 5);
    let (root, outcome) = aw!(v2.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::SchemaMismatch));
    assert!(outcome.repaired);
    assert_eq!(root.state().last_sku, "SKU-6");
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
    assert_eq!((s.schema_version, s.version), (2, 7), "fresh snapshot at the new schema version");
    let (_, again) = aw!(v2.load_with_outcome(id)).expect("load");
    assert_eq!(again.snapshot, SnapshotUse::Used { version: 7 });
    assert_eq!(v2.stats().misses(MissReason::SchemaMismatch), 1);
    assert_eq!(v2.stats().hits, 1);
}}

api_fn! { pub fn upcast_hook_is_used<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let v1 = repo::<OrderV1, _, _>(&es, &ss, 5);
    let id = Uuid::now_v7();
    let mut root = aw!(v1.load_or_create(id)).expect("load");
    root.record(OrderCreated { customer_id: id });
    for n in 1..=4 {
        root.record(item(n));
    }
    aw!(v1.save(&mut root)).expect("save");
    let mut root = aw!(v1.load(id)).expect("load");
    root.record(item(5));
    aw!(v1.save(&mut root)).expect("save");
    let v2 = repo::<Order, _, _>(&es, &ss, 5);
    let (root, outcome) = aw!(v2.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Upcast { version: 5, from_schema: 1 });
    assert_eq!(outcome.events_replayed, 1);
    assert_eq!(root.state(), &expected_order(id, 5), "upcast state plus tail equals replay");
    assert_eq!(v2.stats().upcasts, 1);
}}

api_fn! { pub fn newer_schema_snapshot_is_ignored_and_kept<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let v2 = repo::<Order, _, _>(&es, &ss, 5);
    let (id, customer) = aw!(create_order(&v2, 5, 100));
    assert_eq!(aw!(ss.get_snapshot(id, "Order")).expect("get").map(|s| (s.schema_version, s.version)), Some((2, 6)));
    // Rolled back to schema-1 code.
    let v1 = repo::<OrderV1, _, _>(&es, &ss, 5);
    let (mut root, outcome) = aw!(v1.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::SchemaMismatch));
    assert!(!outcome.repaired, "a newer schema's snapshot is never overwritten");
    assert_eq!(root.state().item_count, expected_order(customer, 5).item_count);
    for n in 6..=12 {
        root.record(item(n));
    }
    assert_eq!(aw!(v1.save(&mut root)).expect("save").snapshot, SnapshotAction::KeptExisting);
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
    assert_eq!((s.schema_version, s.version), (2, 6));
}}

api_fn! { pub fn stale_write_never_replaces_newer<ES: EventStore, SS: SnapshotStore>(_es: Arc<ES>, ss: Arc<SS>) {
    let id = Uuid::now_v7();
    let snap = |version, schema_version| Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version,
        schema_version,
        state: ss.codec().encode(&Order::default()).expect("encode"),
        created_at: eventsource::time::now(),
    };
    assert_eq!(aw!(ss.save_snapshot(&snap(200, 2))).expect("save"), SnapshotWrite::Written);
    assert_eq!(aw!(ss.save_snapshot(&snap(100, 2))).expect("save"), SnapshotWrite::KeptExisting);
    assert_eq!(aw!(ss.save_snapshot(&snap(200, 2))).expect("save"), SnapshotWrite::KeptExisting);
    assert_eq!(aw!(ss.save_snapshot(&snap(300, 1))).expect("save"), SnapshotWrite::KeptExisting);
    assert_eq!(aw!(ss.get_snapshot(id, "Order")).expect("get").map(|s| s.version), Some(200));
    assert_eq!(aw!(ss.save_snapshot(&snap(150, 3))).expect("save"), SnapshotWrite::Written, "higher schema wins");
    assert_eq!(aw!(ss.save_snapshot(&snap(250, 3))).expect("save"), SnapshotWrite::Written);
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
    assert_eq!((s.version, s.schema_version), (250, 3));
    assert!(aw!(ss.snapshot_exists(id, "Order")).expect("exists"));
    assert!(aw!(ss.delete_snapshot(id, "Order")).expect("delete"));
    assert!(!aw!(ss.delete_snapshot(id, "Order")).expect("delete"));
    assert!(!aw!(ss.snapshot_exists(id, "Order")).expect("exists"));
}}

api_fn! { pub fn create_snapshot_with_uncommitted_events_fails<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 100).snapshot_mode(SnapshotMode::Manual);
    let (id, _) = aw!(create_order(&repo, 3, 100));
    let mut root = aw!(repo.load(id)).expect("load");
    root.record(item(9));
    assert!(matches!(aw!(repo.create_snapshot(&root)), Err(Error::UncommittedEvents { count: 1, .. })));
    assert!(!aw!(ss.snapshot_exists(id, "Order")).expect("exists"));
    aw!(repo.save(&mut root)).expect("save");
    assert_eq!(aw!(repo.create_snapshot(&root)).expect("snapshot"), SnapshotWrite::Written);
    assert_eq!(aw!(ss.get_snapshot(id, "Order")).expect("get").map(|s| s.version), Some(5));
}}

api_fn! { pub fn failing_snapshot_store_never_fails_save<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let faulty = Arc::new(Faulty::new(Arc::clone(&ss)));
    faulty.fail_writes.store(true, std::sync::atomic::Ordering::SeqCst);
    faulty.fail_reads.store(true, std::sync::atomic::Ordering::SeqCst);
    let repo = AggregateRepository::<Order, _>::new(Arc::clone(&es))
        .with_snapshot_store(Arc::clone(&faulty))
        .snapshot_threshold(3)
        .expect("threshold");
    let (id, customer) = aw!(create_order(&repo, 10, 2));
    assert!(repo.stats().failures >= 3, "{:?}", repo.stats());
    assert_eq!(repo.stats().writes, 0);
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load never fails");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::StoreError));
    assert_eq!(root.state(), &expected_order(customer, 10));
    assert_eq!(aw!(read_all(&*es, id, 0)).len(), 11, "every event stored");
    // create_snapshot is explicit: its error is returned.
    assert!(aw!(repo.create_snapshot(&root)).is_err());
}}

api_fn! { pub fn snapshot_ahead_of_stream_is_deleted<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 1000);
    let (id, customer) = aw!(create_order(&repo, 9, 100));
    let bogus = Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version: 50,
        schema_version: 2,
        state: ss.codec().encode(&expected_order(customer, 49)).expect("encode"),
        created_at: eventsource::time::now(),
    };
    aw!(ss.save_snapshot(&bogus)).expect("plant");
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::AheadOfStream));
    assert_eq!(root.state(), &expected_order(customer, 9));
    assert_eq!(repo.stats().misses(MissReason::AheadOfStream), 1);
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get");
    assert_eq!(s.map(|s| s.version), Some(10), "bogus snapshot deleted, a valid one written");
}}

api_fn! { pub fn unknown_event_type_fails_load_naming_it<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 100);
    let (id, _) = aw!(create_order(&repo, 2, 100));
    aw!(es.append(id, "Order", 3, &[new_event("OrderTeleported", b"{}")])).expect("append");
    match aw!(repo.load(id)) {
        Err(Error::EventDecode { version, event_type, aggregate_id, .. }) => {
            assert_eq!((version, event_type.as_str(), aggregate_id), (4, "OrderTeleported", id));
        }
        other => panic!("expected EventDecode, got {other:?}"),
    }
    let id2 = Uuid::now_v7();
    aw!(es.append(id2, "Order", 0, &[new_event("ItemAdded", b"{\"sku\":5}")])).expect("append");
    let err = aw!(repo.load(id2)).expect_err("bad payload");
    assert!(err.to_string().contains("ItemAdded"), "{err}");
}}

api_fn! { pub fn manual_mode_writes_only_on_request<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 2).snapshot_mode(SnapshotMode::Manual);
    let (id, _) = aw!(create_order(&repo, 10, 1));
    assert!(!aw!(ss.snapshot_exists(id, "Order")).expect("exists"));
    let root = aw!(repo.load(id)).expect("load");
    aw!(repo.create_snapshot(&root)).expect("snapshot");
    let (_, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 11 });
}}

api_fn! { pub fn background_mode_captures_state_at_save<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let slow = Arc::new(Faulty::new(Arc::clone(&ss)));
    slow.write_delay_ms.store(30, std::sync::atomic::Ordering::SeqCst);
    let repo = AggregateRepository::<Order, _>::new(Arc::clone(&es))
        .with_snapshot_store(Arc::clone(&slow))
        .snapshot_threshold(5)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background);
    let id = Uuid::now_v7();
    let mut root = aw!(repo.load_or_create(id)).expect("load");
    root.record(OrderCreated { customer_id: id });
    for n in 1..=5 {
        root.record(item(n));
    }
    assert_eq!(aw!(repo.save(&mut root)).expect("save").snapshot, SnapshotAction::Queued);
    // Change the state after the save; the queued snapshot holds the state at version 6.
    root.record(item(6));
    aw!(repo.flush()).expect("flush");
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get").expect("snapshot");
    assert_eq!(s.version, 6);
    let state: Order = ss.codec().decode(&s.state).map_err(|e| e.to_string()).expect("decode");
    assert_eq!(state, expected_order(id, 5));
    assert_eq!(repo.stats().writes, 1);
}}

api_fn! { pub fn background_queue_drops_and_counts<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let slow = Arc::new(Faulty::new(Arc::clone(&ss)));
    slow.write_delay_ms.store(200, std::sync::atomic::Ordering::SeqCst);
    let repo = AggregateRepository::<Order, _>::new(Arc::clone(&es))
        .with_snapshot_store(Arc::clone(&slow))
        .snapshot_threshold(1)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background)
        .background_queue_capacity(1);
    let mut actions = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..4 {
        let id = Uuid::now_v7();
        let mut root = aw!(repo.load_or_create(id)).expect("load");
        root.record(OrderCreated { customer_id: id });
        actions.push(aw!(repo.save(&mut root)).expect("save never fails").snapshot);
        ids.push(id);
    }
    // The first is taken by the worker, the second waits in the queue, the rest drop.
    let dropped = actions.iter().filter(|a| **a == SnapshotAction::Dropped).count() as u64;
    assert!(dropped >= 1, "{actions:?}");
    aw!(repo.flush()).expect("flush");
    let stats = repo.stats();
    assert_eq!(stats.dropped, dropped);
    assert_eq!(stats.writes + stats.dropped, 4, "{stats:?}");
    for id in ids {
        assert_eq!(aw!(repo.load(id)).expect("load").version(), 1, "events are never lost");
    }
}}

api_fn! { pub fn no_snapshot_store_replays<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let with = repo::<Order, _, _>(&es, &ss, 2);
    let (id, customer) = aw!(create_order(&with, 6, 1));
    let without = AggregateRepository::<Order, _>::new(Arc::clone(&es));
    let (root, outcome) = aw!(without.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::Missing));
    assert_eq!(outcome.events_replayed, 7);
    assert_eq!(root.state(), &expected_order(customer, 6));
    let mut root = root;
    root.record(item(7));
    assert_eq!(aw!(without.save(&mut root)).expect("save").snapshot, SnapshotAction::None);
}}

api_fn! { pub fn delete_snapshots_by_type_is_strict<ES: EventStore, SS: SnapshotStore>(_es: Arc<ES>, ss: Arc<SS>) {
    for (ty, schema_version) in [("Order", 1), ("Order", 1), ("Order", 2), ("Order", 3), ("Invoice", 1)] {
        let s = Snapshot {
            aggregate_id: Uuid::now_v7(),
            aggregate_type: ty.into(),
            version: 10,
            schema_version,
            state: ss.codec().encode(&Order::default()).expect("encode"),
            created_at: eventsource::time::now(),
        };
        aw!(ss.save_snapshot(&s)).expect("save");
    }
    assert_eq!(aw!(ss.delete_snapshots_by_type("Order", Some(2))).expect("delete"), 2, "schema_version < 2 only");
    assert_eq!(aw!(ss.delete_snapshots_by_type("Order", Some(2))).expect("delete"), 0);
    assert_eq!(aw!(ss.delete_snapshots_by_type("Order", None)).expect("delete"), 2);
    assert_eq!(aw!(ss.delete_snapshots_by_type("Invoice", None)).expect("delete"), 1);
}}

api_fn! { pub fn prepopulate_snapshots_every_aggregate<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 1000).snapshot_mode(SnapshotMode::Manual);
    let mut ids: Vec<(Uuid, u64)> = Vec::new();
    for i in 0..12 {
        ids.push((aw!(create_order(&repo, 3 + i * 2, 100)).0, 4 + i * 2));
    }
    // One aggregate whose history cannot be decoded: it fails, the batch goes on.
    let broken = Uuid::now_v7();
    aw!(es.append(broken, "Order", 0, &[new_event("Nonsense", b"{}")])).expect("append");
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let mut all: Vec<Uuid> = ids.iter().map(|(id, _)| *id).collect();
    all.insert(5, broken);
    let report = aw!(repo.prepopulate(&all, |p| {
        calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(p.done <= p.total && p.total == 13);
    }))
    .expect("prepopulate");
    assert_eq!(calls.into_inner(), 13);
    assert_eq!((report.total, report.succeeded), (13, 12));
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].0, broken);
    for (id, version) in &ids {
        assert_eq!(aw!(ss.get_snapshot(*id, "Order")).expect("get").map(|s| s.version), Some(*version));
    }
    // By event count: only aggregates above the minimum, most events first.
    ids.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let listed = aw!(es.aggregates_by_event_count("Order", 20)).expect("list");
    let expected: Vec<(Uuid, u64)> = ids.iter().copied().filter(|(_, n)| *n > 20).collect();
    assert_eq!(listed, expected);
    assert_eq!(aw!(ss.delete_snapshots_by_type("Order", None)).expect("clear"), 12);
    let report = aw!(repo.prepopulate_by_event_count(20, |_| {})).expect("prepopulate");
    assert_eq!(report.succeeded, expected.len());
}}

api_fn! { pub fn invariants_hold_under_injected_failures<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    // Random commands, saves of random sizes, snapshot writes that fail at random, in every
    // mode; after each step: no stored snapshot is beyond its stream, and a load from a
    // snapshot equals a full replay, in state and version.
    let faulty = Arc::new(Faulty::new(Arc::clone(&ss)));
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move |bound: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % bound
    };
    for mode in [SnapshotMode::Sync, SnapshotMode::Background, SnapshotMode::Manual] {
        let repo = AggregateRepository::<Order, _>::new(Arc::clone(&es))
            .with_snapshot_store(Arc::clone(&faulty))
            .snapshot_threshold(4)
            .expect("threshold")
            .snapshot_mode(mode);
        let plain = AggregateRepository::<Order, _>::new(Arc::clone(&es));
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        for step in 0..40u64 {
            let id = ids[next(3) as usize];
            faulty.fail_writes.store(next(3) == 0, std::sync::atomic::Ordering::SeqCst);
            let mut root = aw!(repo.load_or_create(id)).expect("load never fails");
            if root.version() == 0 {
                root.record(OrderCreated { customer_id: id });
            }
            for _ in 0..next(6) {
                root.record(item(step));
            }
            let expected_state = root.state().clone();
            let saved = aw!(repo.save(&mut root)).expect("save never fails for a snapshot");
            if mode == SnapshotMode::Manual && next(2) == 0 {
                // Explicit: its error is returned, not hidden.
                let r = aw!(repo.create_snapshot(&root));
                assert_eq!(r.is_err(), faulty.fail_writes.load(std::sync::atomic::Ordering::SeqCst));
            }
            aw!(repo.flush()).expect("flush");
            let stream = aw!(es.stream_version(id, "Order")).expect("version");
            assert_eq!(stream, saved.version);
            if let Some(s) = aw!(ss.get_snapshot(id, "Order")).expect("get") {
                assert!(s.version <= stream, "snapshot {} beyond stream {stream}", s.version);
            }
            let (loaded, _) = aw!(repo.load_with_outcome(id)).expect("load");
            let replayed = aw!(plain.load(id)).expect("replay");
            assert_eq!(loaded.state(), replayed.state());
            assert_eq!(loaded.version(), replayed.version());
            assert_eq!(loaded.state(), &expected_state, "the recorded state is the stored state");
        }
    }
}}

api_fn! { pub fn save_snapshots_applies_the_rule_to_each<ES: EventStore, SS: SnapshotStore>(_es: Arc<ES>, ss: Arc<SS>) {
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    let snap = |id, version| Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version,
        schema_version: 2,
        state: ss.codec().encode(&Order::default()).expect("encode"),
        created_at: eventsource::time::now(),
    };
    aw!(ss.save_snapshot(&snap(a, 10))).expect("save");
    aw!(ss.save_snapshot(&snap(b, 10))).expect("save");
    let outcomes = aw!(ss.save_snapshots(&[snap(a, 5), snap(b, 20), snap(c, 1)])).expect("batch");
    assert_eq!(outcomes, vec![SnapshotWrite::KeptExisting, SnapshotWrite::Written, SnapshotWrite::Written]);
    for (id, version) in [(a, 10), (b, 20), (c, 1)] {
        assert_eq!(aw!(ss.get_snapshot(id, "Order")).expect("get").map(|s| s.version), Some(version));
    }
    // One aggregate twice in a batch: each under the rule, in order.
    let outcomes = aw!(ss.save_snapshots(&[snap(c, 3), snap(c, 2)])).expect("batch");
    assert_eq!(outcomes, vec![SnapshotWrite::Written, SnapshotWrite::KeptExisting]);
    assert_eq!(aw!(ss.get_snapshot(c, "Order")).expect("get").map(|s| s.version), Some(3));
    assert!(aw!(ss.save_snapshots(&[])).expect("empty").is_empty());
}}

api_fn! { pub fn lost_reply_after_commit_is_recognised<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    // The append commits, then its reply is lost. Retrying the save (the same root) finds
    // its own events at the expected positions: success, reported as already committed,
    // nothing stored twice, and the snapshot the save owed is taken.
    let lossy = Arc::new(LostReply::new(Arc::clone(&es)));
    let repo = AggregateRepository::<Order, _>::new(Arc::clone(&lossy))
        .with_snapshot_store(Arc::clone(&ss))
        .snapshot_threshold(4)
        .expect("threshold");
    let id = Uuid::now_v7();
    let mut root = aw!(repo.load_or_create(id)).expect("load_or_create");
    root.record(OrderCreated { customer_id: id });
    root.record(item(1));
    aw!(repo.save(&mut root)).expect("first save");
    root.record(item(2));
    root.record(item(3));
    let ids = root.uncommitted_event_ids().to_vec();
    assert_eq!(ids.len(), 2);
    lossy.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let lost = aw!(repo.save(&mut root));
    assert!(matches!(lost, Err(Error::Store { .. })), "the lost reply is an error: {lost:?}");
    assert_eq!(root.uncommitted_event_ids(), &ids[..], "ids survive a failed save");
    let retried = aw!(repo.save(&mut root)).expect("retry of the same save succeeds");
    assert!(retried.already_committed, "{retried:?}");
    assert_eq!((retried.version, retried.appended), (4, 2));
    assert_eq!(retried.snapshot, SnapshotAction::Written, "the owed snapshot is taken");
    assert!(root.uncommitted_events().is_empty());
    let stored = aw!(read_all(&*es, id, 0));
    assert_eq!(stored.len(), 4, "the batch is stored once");
    assert_eq!(stored[2].event_id, ids[0]);
    assert_eq!(stored[3].event_id, ids[1]);
    // The next command goes on from there, and a real conflict is still a conflict.
    let mut other = aw!(repo.load(id)).expect("load");
    root.record(item(4));
    other.record(item(5));
    let saved = aw!(repo.save(&mut root)).expect("save after retry");
    assert_eq!((saved.version, saved.already_committed), (5, false));
    match aw!(repo.save(&mut other)) {
        Err(Error::Conflict { .. }) => {}
        other => panic!("a different writer's batch is a conflict, got {other:?}"),
    }
    let loaded = aw!(repo.load(id)).expect("load");
    let mut expected = expected_order(id, 4);
    expected.customer_id = Some(id);
    assert_eq!(loaded.state(), &expected);
}}

// ---------------------------------------------------------------------------------------
// Event evolution: old payloads written as old code wrote them, read through the upcast
// chains, aliases and retired names of `common::evolving`.

/// An event as old code stored it: `payload` (an old shape) encoded with the store's codec,
/// under `event_type` and `event_version`.
fn old_event<ES: EventStore, T: serde::Serialize>(es: &ES, event_type: &str, event_version: u32, payload: &T) -> NewEvent {
    NewEvent {
        event_version,
        ..new_event(event_type, &es.codec().encode(payload).expect("encode"))
    }
}

api_fn! { fn read_cart<ES: EventStore>(es: &ES, id: Uuid) -> Vec<eventsource::StoredEvent> {
    let mut out = Vec::new();
    aw!(es.read_stream(id, "Cart", 0, &mut |r| {
        out.push(r.to_owned()?);
        Ok(())
    }))
    .expect("read_stream");
    out
}}

/// The event decode error of a failed load, with the stream version and event type it names.
fn decode_failure<T: std::fmt::Debug>(result: eventsource::Result<T>) -> (u64, String, EventDecodeError) {
    match result {
        Err(Error::EventDecode { version, event_type, source, .. }) => (version, event_type, *source),
        other => panic!("expected an EventDecode error, got {other:?}"),
    }
}

fn line(sku: &str, qty: u32, price_cents: i64) -> (String, u32, i64) {
    (sku.to_owned(), qty, price_cents)
}

api_fn! { pub fn old_event_versions_upcast_on_load<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Cart, _, _>(&es, &ss, 100);
    let id = Uuid::now_v7();
    let history = [
        old_event(&*es, "CartOpened", 1, &CartOpened { customer: "ada".into() }),
        old_event(&*es, "ItemAdded", 1, &ItemAddedV1 { sku: "A".into() }),
        old_event(&*es, "ItemAdded", 2, &ItemAddedV2 { sku: "B".into(), qty: 2 }),
        old_event(&*es, "ItemAdded", 3, &ItemAdded { sku: "C".into(), qty: 3, price_cents: 250 }),
        old_event(&*es, "DiscountApplied", 2, &DiscountAppliedV2 { percent: "15%".into() }),
    ];
    aw!(es.append(id, "Cart", 0, &history)).expect("append");
    let (mut root, outcome) = aw!(repo.load_with_outcome(id)).expect("load through the upcast chains");
    let expected = Cart {
        customer: "ada".into(),
        lines: vec![line("A", 1, 0), line("B", 2, 0), line("C", 3, 250)],
        discount: 15,
    };
    assert_eq!(root.state(), &expected, "version 1 and 2 payloads converted step by step");
    assert_eq!((outcome.events_replayed, outcome.events_skipped, outcome.version), (5, 0, 5));

    // Stored events are never rewritten; a new event is stored at the current version.
    root.record(ItemAdded { sku: "D".into(), qty: 1, price_cents: 100 });
    aw!(repo.save(&mut root)).expect("save");
    let stored = aw!(read_cart(&*es, id));
    assert_eq!(stored.iter().map(|e| e.event_version).collect::<Vec<_>>(), vec![1, 1, 2, 3, 2, 3]);
    // A stored event decoded on its own goes through the same chain.
    let one = stored[1].decode::<CartEvent, _>(es.codec()).expect("decode");
    assert!(
        matches!(&one.event, CartEvent::ItemAdded(e) if e == &ItemAdded { sku: "A".into(), qty: 1, price_cents: 0 }),
        "{one:?}"
    );
    assert_eq!(one.event_version, 1, "the envelope keeps the stored version");

    // Old versions after a snapshot are upcast too (read with the snapshot in one query
    // where the two stores share a database).
    aw!(repo.create_snapshot(&root)).expect("snapshot");
    let tail = [
        old_event(&*es, "ItemAdded", 1, &ItemAddedV1 { sku: "E".into() }),
        old_event(&*es, "ItemAdded", 2, &ItemAddedV2 { sku: "F".into(), qty: 4 }),
    ];
    aw!(es.append(id, "Cart", 6, &tail)).expect("append");
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 6 });
    assert_eq!((outcome.events_replayed, outcome.version), (2, 8));
    assert_eq!(root.state().lines[3..], [line("D", 1, 100), line("E", 1, 0), line("F", 4, 0)]);
}}

api_fn! { pub fn renamed_event_decodes_under_its_alias<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Cart, _, _>(&es, &ss, 100);
    let id = Uuid::now_v7();
    let history = [
        old_event(&*es, "CartOpened", 1, &CartOpened { customer: "bo".into() }),
        // Stored under the event's former name, at an old version and at the current one.
        old_event(&*es, "ItemPut", 1, &ItemAddedV1 { sku: "A".into() }),
        old_event(&*es, "ItemPut", 3, &ItemAdded { sku: "B".into(), qty: 2, price_cents: 5 }),
    ];
    aw!(es.append(id, "Cart", 0, &history)).expect("append");
    let mut root = aw!(repo.load(id)).expect("load under the alias");
    assert_eq!(root.state().lines, [line("A", 1, 0), line("B", 2, 5)]);
    // New events are stored under the current name.
    root.record(ItemAdded { sku: "C".into(), qty: 1, price_cents: 1 });
    aw!(repo.save(&mut root)).expect("save");
    let stored = aw!(read_cart(&*es, id));
    assert_eq!(
        stored.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>(),
        ["CartOpened", "ItemPut", "ItemPut", "ItemAdded"]
    );
    assert_eq!(aw!(repo.load(id)).expect("load").state().lines.len(), 3);
}}

api_fn! { pub fn retired_event_is_skipped_and_counted<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Cart, _, _>(&es, &ss, 5);
    let id = Uuid::now_v7();
    let flagged = |reason: &str| old_event(&*es, "CartFlagged", 1, &CartFlagged { reason: reason.into() });
    let history = [
        old_event(&*es, "CartOpened", 1, &CartOpened { customer: "cy".into() }),
        flagged("fraud check"),
        old_event(&*es, "ItemAdded", 3, &ItemAdded { sku: "A".into(), qty: 1, price_cents: 10 }),
        flagged("cleared"),
    ];
    aw!(es.append(id, "Cart", 0, &history)).expect("append");
    let (mut root, outcome) = aw!(repo.load_with_outcome(id)).expect("retired events never fail a load");
    assert_eq!(root.state().lines, [line("A", 1, 10)]);
    assert_eq!(root.state().customer, "cy");
    assert_eq!((outcome.events_replayed, outcome.events_skipped, outcome.version), (2, 2, 4));
    assert_eq!(root.committed_version(), 4, "skipped events keep their versions");

    // A save at version 5 snapshots the state (the retired events in its past included);
    // a retired event after the snapshot is skipped in the tail.
    root.record(ItemAdded { sku: "B".into(), qty: 2, price_cents: 20 });
    assert_eq!(aw!(repo.save(&mut root)).expect("save").snapshot, SnapshotAction::Written);
    aw!(es.append(id, "Cart", 5, &[flagged("again")])).expect("append");
    let (root, outcome) = aw!(repo.load_with_outcome(id)).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 5 });
    assert_eq!((outcome.events_replayed, outcome.events_skipped, outcome.version), (0, 1, 6));
    assert_eq!(root.state().lines, [line("A", 1, 10), line("B", 2, 20)]);

    // On its own, a retired event has no domain event: a typed error, not a panic.
    let stored = aw!(read_cart(&*es, id));
    match stored[1].decode::<CartEvent, _>(es.codec()) {
        Err(Error::EventDecode { version, source, .. }) => {
            assert_eq!(version, 2);
            assert!(matches!(&*source, EventDecodeError::Retired { event_type } if event_type == "CartFlagged"), "{source:?}");
        }
        other => panic!("expected EventDecode(Retired), got {other:?}"),
    }
}}

api_fn! { pub fn unreadable_event_versions_are_typed_errors<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Cart, _, _>(&es, &ss, 100);
    let opened = || old_event(&*es, "CartOpened", 1, &CartOpened { customer: "di".into() });

    // Written by newer code (version 4 of a version-3 event): an error, never skipped.
    let id = Uuid::now_v7();
    let newer = old_event(&*es, "ItemAdded", 4, &ItemAdded { sku: "A".into(), qty: 1, price_cents: 1 });
    aw!(es.append(id, "Cart", 0, &[opened(), newer])).expect("append");
    let result = aw!(repo.load(id));
    let message = result.as_ref().map(|_| ()).expect_err("newer version").report().to_string();
    let (version, event_type, source) = decode_failure(result);
    assert_eq!((version, event_type.as_str()), (2, "ItemAdded"));
    match source {
        EventDecodeError::NewerVersion { event_type, event_version, current } => {
            assert_eq!((event_type.as_str(), event_version, current), ("ItemAdded", 4, 3));
        }
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    assert!(message.contains("written by a newer version of the application"), "{message}");

    // Below the lowest `from` (version 1 of DiscountApplied has no upcast).
    let id = Uuid::now_v7();
    let unreleased = old_event(&*es, "DiscountApplied", 1, &DiscountAppliedV2 { percent: "5%".into() });
    aw!(es.append(id, "Cart", 0, &[opened(), unreleased])).expect("append");
    match decode_failure(aw!(repo.load(id))) {
        (2, _, EventDecodeError::NoUpcastPath { event_version, current, oldest, .. }) => {
            assert_eq!((event_version, current, oldest), (1, 3, 2));
        }
        other => panic!("expected NoUpcastPath, got {other:?}"),
    }

    // A `TryFrom` step that refuses the stored payload.
    let id = Uuid::now_v7();
    let refused = old_event(&*es, "DiscountApplied", 2, &DiscountAppliedV2 { percent: "lots".into() });
    aw!(es.append(id, "Cart", 0, &[opened(), refused])).expect("append");
    match decode_failure(aw!(repo.load(id))) {
        (2, event_type, EventDecodeError::Upcast { event_type: name, event_version, from, to, source }) => {
            assert_eq!((event_type.as_str(), name.as_str()), ("DiscountApplied", "DiscountApplied"));
            assert_eq!((event_version, from, to), (2, 2, 3));
            assert_eq!(source.to_string(), "\"lots\" is not a percentage");
        }
        other => panic!("expected Upcast, got {other:?}"),
    }

    // Nothing was rewritten or removed.
    assert_eq!(aw!(read_cart(&*es, id)).iter().map(|e| e.event_version).collect::<Vec<_>>(), [1, 2]);
}}

// Loads each id with `load_with_outcome` and checks `load_many_with_outcome` and
// `load_many` gave the same: state, version, outcome, or not found.
api_fn! { fn assert_many_equals_load<A: eventsource::Aggregate + PartialEq, ES: EventStore, SS: SnapshotStore>(repo: &Repo<A, ES, SS>, request: &[Uuid]) -> Vec<eventsource::LoadOutcome> {
    let many = aw!(repo.load_many_with_outcome(request)).expect("load_many_with_outcome");
    let found = aw!(repo.load_many(request)).expect("load_many");
    let mut distinct: Vec<Uuid> = Vec::new();
    for id in request {
        if !distinct.contains(id) {
            distinct.push(*id);
        }
    }
    assert_eq!(many.iter().map(|(id, _)| *id).collect::<Vec<_>>(), distinct, "each id once, in request order");
    assert_eq!(found.iter().map(|(id, _)| *id).collect::<Vec<_>>(), distinct);
    let mut outcomes = Vec::new();
    for ((id, batch), (_, some)) in many.into_iter().zip(found) {
        match (batch, aw!(repo.load_with_outcome(id))) {
            (Ok((b, bo)), Ok((s, so))) => {
                assert_eq!((b.state(), b.version()), (s.state(), s.version()), "{id}");
                assert_eq!(bo, so, "{id}: the same load decisions");
                let some = some.expect("found");
                assert_eq!((some.state(), some.version()), (s.state(), s.version()));
                outcomes.push(bo);
            }
            (Err(Error::NotFound { aggregate_id, .. }), Err(Error::NotFound { .. })) => {
                assert_eq!(aggregate_id, id);
                assert!(some.is_none(), "{id}: not found is None");
            }
            (b, s) => panic!("{id}: load_many gave {b:?}, load gave {s:?}"),
        }
    }
    outcomes
}}

api_fn! { pub fn load_many_equals_load<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let writer = repo::<Order, _, _>(&es, &ss, 5);
    let (head, _) = aw!(create_order(&writer, 7, 100)); // snapshot at 8, the head
    let (tail, _) = aw!(create_order(&writer, 7, 3)); // snapshot at 6, then 2 events
    let (plain, _) = aw!(create_order(&repo::<Order, _, _>(&es, &ss, 1000), 3, 100)); // no snapshot
    let v1 = repo::<OrderV1, _, _>(&es, &ss, 5);
    let old = Uuid::now_v7();
    let mut root = aw!(v1.load_or_create(old)).expect("load");
    root.record(OrderCreated { customer_id: old });
    for n in 1..=6 {
        root.record(item(n));
    }
    aw!(v1.save(&mut root)).expect("save"); // a schema-1 snapshot at 7
    let missing = Uuid::now_v7();
    let request = [head, missing, tail, plain, head, old, missing];

    // Manual mode: no repair snapshot, so `load` after `load_many` sees the same store.
    let current = repo::<Order, _, _>(&es, &ss, 5).snapshot_mode(SnapshotMode::Manual);
    let outcomes = aw!(assert_many_equals_load(&current, &request));
    assert_eq!(
        outcomes.iter().map(|o| o.snapshot).collect::<Vec<_>>(),
        [
            SnapshotUse::Used { version: 8 },
            SnapshotUse::Used { version: 6 },
            SnapshotUse::Discarded(MissReason::Missing),
            SnapshotUse::Upcast { version: 7, from_schema: 1 },
        ]
    );
    assert_eq!(outcomes[0].events_replayed, 0, "snapshot at the head: no tail");
    assert_eq!(outcomes[1].events_replayed, 2, "the tail after the snapshot");
    let no_upcast = repo::<OrderNoUpcast, _, _>(&es, &ss, 5).snapshot_mode(SnapshotMode::Manual);
    let outcomes = aw!(assert_many_equals_load(&no_upcast, &request));
    assert_eq!(outcomes[3].snapshot, SnapshotUse::Discarded(MissReason::SchemaMismatch));
    assert_eq!(outcomes[3].events_replayed, 7);

    // The empty request.
    assert!(aw!(current.load_many(&[])).expect("empty").is_empty());
    assert!(aw!(current.load_many_with_outcome(&[])).expect("empty").is_empty());

    // With repairs on, a batch load repairs what a load repairs, and counts the same.
    let repairing = repo::<OrderNoUpcast, _, _>(&es, &ss, 5);
    let loaded = aw!(repairing.load_many_with_outcome(&[old, head])).expect("load_many");
    let (_, outcome) = loaded[0].1.as_ref().expect("loaded");
    assert!(outcome.repaired);
    let s = aw!(ss.get_snapshot(old, "Order")).expect("get").expect("snapshot");
    assert_eq!((s.schema_version, s.version), (2, 7), "fresh snapshot at the new schema version");
    assert_eq!(repairing.stats().misses(MissReason::SchemaMismatch), 1);
    assert_eq!(repairing.stats().hits, 1);
}}

api_fn! { pub fn load_many_deletes_a_snapshot_ahead_of_its_stream<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 1000);
    let (id, customer) = aw!(create_order(&repo, 9, 100));
    let (other, other_customer) = aw!(create_order(&repo, 2, 100));
    let bogus = Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version: 50,
        schema_version: 2,
        state: ss.codec().encode(&expected_order(customer, 49)).expect("encode"),
        created_at: eventsource::time::now(),
    };
    aw!(ss.save_snapshot(&bogus)).expect("plant");
    let loaded = aw!(repo.load_many_with_outcome(&[id, other])).expect("load_many");
    let (root, outcome) = loaded[0].1.as_ref().expect("loaded");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::AheadOfStream));
    assert_eq!(root.state(), &expected_order(customer, 9));
    let (root, _) = loaded[1].1.as_ref().expect("loaded");
    assert_eq!(root.state(), &expected_order(other_customer, 2));
    assert_eq!(repo.stats().misses(MissReason::AheadOfStream), 1);
    let s = aw!(ss.get_snapshot(id, "Order")).expect("get");
    assert_eq!(s.map(|s| s.version), Some(10), "bogus snapshot deleted, a valid one written");
}}

api_fn! { pub fn load_many_isolates_a_failing_aggregate<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let repo = repo::<Order, _, _>(&es, &ss, 2);
    let (good, customer) = aw!(create_order(&repo, 3, 100));
    let (bad, _) = aw!(create_order(&repo, 2, 100)); // snapshot at 3
    aw!(es.append(bad, "Order", 3, &[new_event("OrderTeleported", b"{}")])).expect("append");
    let (after, after_customer) = aw!(create_order(&repo, 1, 100));
    let loaded = aw!(repo.load_many_with_outcome(&[good, bad, after])).expect("load_many");
    assert_eq!(loaded[0].1.as_ref().expect("good").0.state(), &expected_order(customer, 3));
    match &loaded[1].1 {
        Err(Error::EventDecode { version, event_type, aggregate_id, .. }) => {
            assert_eq!((*version, event_type.as_str(), *aggregate_id), (4, "OrderTeleported", bad));
        }
        other => panic!("expected EventDecode, got {other:?}"),
    }
    assert_eq!(loaded[2].1.as_ref().expect("after").0.state(), &expected_order(after_customer, 1));
    match aw!(repo.load_many(&[good, bad])) {
        Err(Error::EventDecode { aggregate_id, .. }) => assert_eq!(aggregate_id, bad),
        other => panic!("expected EventDecode, got {other:?}"),
    }
}}

api_fn! { pub fn load_many_reads_more_than_a_chunk<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
    let chunk = eventsource::repository::LOAD_MANY_CHUNK;
    let with_snapshots = repo::<Order, _, _>(&es, &ss, 2);
    let without = repo::<Order, _, _>(&es, &ss, 1000);
    let mut expected = Vec::new();
    for i in 0..chunk + 9 {
        let writer = if i % 2 == 0 { &with_snapshots } else { &without };
        let items = 1 + (i % 3) as u64;
        let (id, customer) = aw!(create_order(writer, items, 100));
        expected.push((id, Some(expected_order(customer, items))));
        if i % 50 == 0 {
            expected.push((Uuid::now_v7(), None));
        }
    }
    let ids: Vec<Uuid> = expected.iter().map(|(id, _)| *id).collect();
    let reader = repo::<Order, _, _>(&es, &ss, 2).snapshot_mode(SnapshotMode::Manual);
    let loaded = aw!(reader.load_many(&ids)).expect("load_many");
    assert_eq!(loaded.len(), expected.len());
    for ((id, root), (want_id, want)) in loaded.iter().zip(&expected) {
        assert_eq!(id, want_id);
        assert_eq!(root.as_ref().map(|r| r.state()), want.as_ref());
    }
    let found = ids.len() - expected.iter().filter(|(_, s)| s.is_none()).count();
    assert_eq!(reader.stats().hits as usize, found.div_ceil(2), "every other aggregate has a snapshot");
    // Pre-population and verification read in batches too.
    let report = aw!(reader.prepopulate(&ids, |_| {})).expect("prepopulate");
    assert_eq!(report.succeeded, found);
    let report = aw!(reader.verify_many(&ids, |_| {})).expect("verify_many");
    assert!(report.mismatches.is_empty());
    assert_eq!(report.failed.len(), ids.len() - found, "the missing ones are not found");
}}
