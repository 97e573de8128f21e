-- Moving a database of the default layout to the partitioned layout, step 3 of 3: every
-- event and snapshot is copied with all its columns (global positions and snapshot ids
-- included), the new sequences continue where the old ones stood, and the old tables go.
INSERT INTO events (global_position, event_id, aggregate_id, aggregate_type, event_type, event_version,
                    version, timestamp, payload, metadata, created_at)
SELECT global_position, event_id, aggregate_id, aggregate_type, event_type, event_version,
       version, timestamp, payload, metadata, created_at
FROM events_single
ORDER BY global_position;

INSERT INTO snapshots (id, aggregate_id, aggregate_type, version, schema_version, state, created_at)
SELECT id, aggregate_id, aggregate_type, version, schema_version, state, created_at
FROM snapshots_single
ORDER BY id;

SELECT setval(pg_get_serial_sequence('events', 'global_position'), last_value, is_called)
FROM events_single_global_position_seq;
SELECT setval(pg_get_serial_sequence('snapshots', 'id'), last_value, is_called)
FROM snapshots_single_id_seq;

DROP TABLE events_single;
DROP TABLE snapshots_single;
