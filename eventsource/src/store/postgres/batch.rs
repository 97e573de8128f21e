//! The rows of a batch joint read (`sql::JOINT_READ_MANY`) handed to a [`BatchVisitor`],
//! shared by the sync and async stores: each aggregate's header row (decoded as the
//! one-aggregate joint read decodes it), then its events unless the visitor declined them.

use tokio_postgres::Row;
use uuid::Uuid;

use super::ops::Header;
use super::rows;
use crate::error::Result;
use crate::store::BatchVisitor;

/// Where a batch read is: the aggregate whose rows are arriving, and whether its events are
/// wanted.
pub(crate) struct BatchRows<'a, V: ?Sized> {
    ids: &'a [Uuid],
    aggregate_type: &'a str,
    visitor: &'a mut V,
    current: Option<usize>,
    deliver: bool,
}

impl<'a, V: BatchVisitor + ?Sized> BatchRows<'a, V> {
    /// A read of `ids` (the statement's `$1`, positions 1, 2, ...) for `visitor`.
    pub(crate) fn new(ids: &'a [Uuid], aggregate_type: &'a str, visitor: &'a mut V) -> Self {
        Self {
            ids,
            aggregate_type,
            visitor,
            current: None,
            deliver: false,
        }
    }

    /// One row; always goes on (a visitor's error stops the read).
    pub(crate) fn row(&mut self, row: &Row) -> Result<bool> {
        let index = rows::batch_index(row, self.ids.len())?;
        if self.current != Some(index) {
            // The first row of an aggregate is its header (sort key 0).
            self.current = Some(index);
            let id = self.ids.get(index).copied().unwrap_or_default();
            let mut header = Header::Pending;
            self.deliver = match header.decode(row, id, self.aggregate_type) {
                Some(decoded) => self.visitor.snapshot(index, decoded.snapshot)?,
                // Unreadable: no `snapshot` call, so the repository reads this one alone.
                None => false,
            };
            return Ok(true);
        }
        if self.deliver {
            self.visitor.event(index, &rows::replay_event(row)?)?;
        }
        Ok(true)
    }
}

/// Against a server (`EVENTSOURCE_PG_URL`; skipped without one unless `CI` is set): the
/// batch statement's plans on a filled table, and what the store hands a batch visitor.
#[cfg(test)]
mod tests {
    use postgres::{Client, NoTls};
    use uuid::Uuid;

    use super::super::sql;
    use super::super::{AsyncPostgresEventStore, PgOptions, PostgresEventStore};
    use crate::codec::JsonCodec;
    use crate::error::Result;
    use crate::event::ReplayEvent;
    use crate::snapshot::Snapshot;
    use crate::store::{BatchVisitor, EventStore};

    const AGGREGATES: i64 = 20_000;

    /// A client in a fresh schema, or `None` (skip) without a server outside CI.
    fn schema() -> Option<(Client, String, String)> {
        let url = match std::env::var("EVENTSOURCE_PG_URL") {
            Ok(url) if !url.trim().is_empty() => url,
            _ if std::env::var_os("CI").is_some() => panic!("CI without EVENTSOURCE_PG_URL"),
            _ => {
                eprintln!("skipped: EVENTSOURCE_PG_URL is not set");
                return None;
            }
        };
        let mut client = Client::connect(&url, NoTls).expect("connect");
        let name = format!("es_test_{}_many", Uuid::new_v4().simple());
        client
            .batch_execute(&format!("CREATE SCHEMA \"{name}\"; SET search_path TO \"{name}\""))
            .expect("schema");
        Some((client, name, url))
    }

    /// Aggregates with 10 events each, the even ones with a snapshot at version 8, plus
    /// as many events of another type; then `ANALYZE` when asked.
    fn fill(client: &mut Client, analyze: bool) {
        client
            .batch_execute(&format!(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \"timestamp\", payload)
                 SELECT gen_random_uuid(), a.id, t.ty, 'ItemAdded', 1, v, now(), '{{}}'::jsonb
                 FROM (SELECT gen_random_uuid() AS id, n FROM generate_series(1, {AGGREGATES}) n) a,
                      (VALUES ('Order'), ('Other')) t(ty), generate_series(1, 10) v;
                 INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state)
                 SELECT aggregate_id, 'Order', 8, 1, '{{}}'::jsonb FROM events
                 WHERE aggregate_type = 'Order' AND version = 1 AND get_byte(uuid_send(aggregate_id), 15) % 2 = 0;"
            ))
            .expect("fill");
        if analyze {
            client
                .batch_execute("ANALYZE events; ANALYZE snapshots")
                .expect("analyze");
        }
    }

    fn some_ids(client: &mut Client, limit: i64) -> Vec<Uuid> {
        client
            .query(
                "SELECT aggregate_id FROM events WHERE aggregate_type = 'Order' AND version = 1 ORDER BY aggregate_id LIMIT $1",
                &[&limit],
            )
            .expect("ids")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    /// Prepares the statement as the stores' sessions run it (`conn::session_options`),
    /// under `mode`.
    fn prepare(client: &mut Client, mode: &str) {
        client
            .batch_execute(&format!(
                "SET plan_cache_mode = {mode}; SET enable_seqscan = off; SET enable_bitmapscan = off;
                 SET enable_sort = off; SET jit = off; DEALLOCATE ALL;
                 PREPARE many(uuid[], text) AS {}",
                sql::JOINT_READ_MANY.text
            ))
            .expect("prepare");
    }

    fn array(ids: &[Uuid]) -> String {
        format!("{{{}}}", ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(","))
    }

    fn explain(client: &mut Client, ids: &[Uuid]) -> String {
        let rows = client
            .query(&format!("EXPLAIN EXECUTE many('{}', 'Order')", array(ids)), &[])
            .expect("explain");
        rows.iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Index probes per id, nothing else: no scan of a table, no other index, one sort.
    fn assert_probes(text: &str, what: &str) {
        assert!(
            !text.contains("Seq Scan") && !text.contains("Bitmap"),
            "{what}:\n{text}"
        );
        assert!(text.contains("Nested Loop"), "{what}:\n{text}");
        assert!(
            text.contains("Index Scan using uq_events_stream_version"),
            "{what}:\n{text}"
        );
        assert!(
            text.contains("using uq_snapshots_aggregate") || text.contains("using idx_snapshots_aggregate_lookup"),
            "{what}:\n{text}"
        );
        for other in [
            "idx_events_aggregate_type",
            "idx_snapshots_aggregate_type",
            "idx_snapshots_schema_version",
        ] {
            assert!(!text.contains(other), "{what}:\n{text}");
        }
        assert_eq!(text.matches("Sort  (").count(), 1, "{what}:\n{text}");
    }

    #[test]
    fn the_batch_read_probes_the_indexes_on_a_filled_table() {
        let Some((mut client, name, url)) = schema() else {
            return;
        };
        let store = PostgresEventStore::from_config(
            url.parse().expect("config"),
            JsonCodec,
            PgOptions::new().schema(&name).pool_size(1),
        )
        .expect("store");
        // A young database: the generic plan is made (and cached) on empty tables.
        prepare(&mut client, "force_generic_plan");
        let young = [Uuid::now_v7(), Uuid::now_v7()];
        client
            .batch_execute(&format!("EXECUTE many('{}', 'Order')", array(&young)))
            .expect("execute on empty tables");
        fill(&mut client, false);
        for ids in [some_ids(&mut client, 10), some_ids(&mut client, 256)] {
            assert_probes(&explain(&mut client, &ids), "the plan made on empty tables");
        }
        client
            .batch_execute("ANALYZE events; ANALYZE snapshots")
            .expect("analyze");
        for mode in ["force_generic_plan", "force_custom_plan"] {
            prepare(&mut client, mode);
            for ids in [some_ids(&mut client, 10), some_ids(&mut client, 256)] {
                assert_probes(&explain(&mut client, &ids), mode);
            }
        }
        drop(store);
        client
            .batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
            .expect("drop");
    }

    /// Records what a batch read hands its visitor.
    #[derive(Default)]
    struct Recorder {
        snapshots: Vec<(usize, Option<u64>)>,
        events: Vec<(usize, u64)>,
    }

    impl BatchVisitor for Recorder {
        fn snapshot(&mut self, index: usize, snapshot: Option<Snapshot>) -> Result<bool> {
            self.snapshots.push((index, snapshot.as_ref().map(|s| s.version)));
            // Decline the events of the third aggregate: they must not arrive.
            Ok(index != 2)
        }

        fn event(&mut self, index: usize, event: &ReplayEvent<'_>) -> Result<()> {
            self.events.push((index, event.version));
            Ok(())
        }
    }

    #[test]
    fn the_batch_read_hands_each_position_its_snapshot_and_tail() {
        let Some((mut client, name, url)) = schema() else {
            return;
        };
        let store = PostgresEventStore::from_config(
            url.parse().expect("config"),
            JsonCodec,
            PgOptions::new().schema(&name).pool_size(1),
        )
        .expect("store");
        fill(&mut client, true);
        let ids = some_ids(&mut client, 40);
        let with: Vec<Uuid> = ids.iter().copied().filter(|id| id.as_bytes()[15] % 2 == 0).collect();
        let without: Vec<Uuid> = ids.iter().copied().filter(|id| id.as_bytes()[15] % 2 == 1).collect();
        let (a, b, c) = (with[0], without[0], with[1]);
        let request = [a, b, c, Uuid::now_v7(), a];
        let mut seen = Recorder::default();
        assert!(store
            .read_many_with_snapshot(&request, "Order", &mut seen)
            .expect("read"));
        assert_eq!(
            seen.snapshots,
            [(0, Some(8)), (1, None), (2, Some(8)), (3, None), (4, Some(8))]
        );
        let mut expected: Vec<(usize, u64)> = (8..=10).map(|v| (0, v)).collect();
        expected.extend((1..=10).map(|v| (1, v)));
        expected.extend((8..=10).map(|v| (4, v)));
        assert_eq!(
            seen.events, expected,
            "anchor and tail, whole stream, none declined, none missing"
        );
        let mut empty = Recorder::default();
        assert!(store.read_many_with_snapshot(&[], "Order", &mut empty).expect("empty"));
        assert!(empty.snapshots.is_empty());
        drop(store);

        // The async store hands out the same.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let seen_async = runtime.block_on(async {
            let store = AsyncPostgresEventStore::from_config(
                url.parse().expect("config"),
                JsonCodec,
                PgOptions::new().schema(&name).pool_size(1),
            )
            .await
            .expect("async store");
            let mut seen = Recorder::default();
            let supported = crate::tokio::EventStore::read_many_with_snapshot(&store, &request, "Order", &mut seen)
                .await
                .expect("read");
            assert!(supported);
            seen
        });
        assert_eq!(seen_async.snapshots, seen.snapshots);
        assert_eq!(seen_async.events, seen.events);
        client
            .batch_execute(&format!("DROP SCHEMA \"{name}\" CASCADE"))
            .expect("drop");
    }
}
