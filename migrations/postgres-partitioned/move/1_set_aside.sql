-- Moving a database of the default layout to the partitioned layout, step 1 of 3, in one
-- transaction with the others: the default layout's tables, indexes and sequences are
-- renamed out of the way (`events_single`, ...) and the record of their migrations is
-- cleared. Step 2 applies the partitioned layout's migrations (`../0001_events.sql`,
-- `../0002_snapshots.sql`, after `SET LOCAL eventsource.partitions = N`), step 3
-- (`2_copy.sql`) copies every row and drops the old tables.
ALTER TABLE events RENAME TO events_single;
ALTER SEQUENCE events_global_position_seq RENAME TO events_single_global_position_seq;
ALTER INDEX events_pkey RENAME TO events_single_pkey;
ALTER INDEX uq_events_event_id RENAME TO uq_events_single_event_id;
ALTER INDEX uq_events_stream_version RENAME TO uq_events_single_stream_version;
ALTER INDEX idx_events_aggregate_type RENAME TO idx_events_single_aggregate_type;

ALTER TABLE snapshots RENAME TO snapshots_single;
ALTER SEQUENCE snapshots_id_seq RENAME TO snapshots_single_id_seq;
ALTER INDEX snapshots_pkey RENAME TO snapshots_single_pkey;
ALTER INDEX uq_snapshots_aggregate RENAME TO uq_snapshots_single_aggregate;
ALTER INDEX idx_snapshots_aggregate_lookup RENAME TO idx_snapshots_single_aggregate_lookup;
ALTER INDEX idx_snapshots_aggregate_type RENAME TO idx_snapshots_single_aggregate_type;
ALTER INDEX idx_snapshots_schema_version RENAME TO idx_snapshots_single_schema_version;
ALTER INDEX idx_snapshots_created_at RENAME TO idx_snapshots_single_created_at;

DELETE FROM eventsource_migrations;
