-- eventsource events table (PostgreSQL), partitioned layout: hash-partitioned by
-- aggregate_id, the distribution column, so that every unique key includes it (the rule
-- of PostgreSQL's declarative partitioning and of Citus). Event ids are unique per
-- aggregate; global_position still numbers every event, and its own index gives the
-- global order. The partition count is read from the setting `eventsource.partitions`
-- (8 when unset): `SET eventsource.partitions = 16;` before applying this file with psql.
CREATE TABLE IF NOT EXISTS events (
    global_position BIGSERIAL NOT NULL,
    event_id UUID NOT NULL,
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    event_type VARCHAR(255) NOT NULL,
    event_version INTEGER NOT NULL DEFAULT 1,
    version BIGINT NOT NULL,
    timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
    payload JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    CONSTRAINT events_pkey PRIMARY KEY (aggregate_id, global_position),
    CONSTRAINT uq_events_event_id UNIQUE (aggregate_id, event_id),
    CONSTRAINT uq_events_stream_version UNIQUE (aggregate_id, aggregate_type, version)
) PARTITION BY HASH (aggregate_id);

CREATE INDEX IF NOT EXISTS idx_events_aggregate_type
    ON events(aggregate_type, aggregate_id);
CREATE INDEX IF NOT EXISTS idx_events_global_position
    ON events(global_position);

-- The partitions: eventsource_create_partitions(t) creates t_p0 .. t_p<N-1> (N from the
-- setting `eventsource.partitions`, 8 when unset) and names each index of a partition after
-- the table's with the partition's suffix (uq_events_stream_version_p0, ...). It stays in
-- the schema; 0002_snapshots.sql uses it too.
CREATE OR REPLACE FUNCTION eventsource_create_partitions(parent TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
DECLARE
    n INTEGER := COALESCE(NULLIF(current_setting('eventsource.partitions', true), ''), '8')::INTEGER;
    part TEXT;
    idx RECORD;
BEGIN
    FOR r IN 0 .. n - 1 LOOP
        part := parent || '_p' || r;
        EXECUTE format('CREATE TABLE IF NOT EXISTS %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                       part, parent, n, r);
        FOR idx IN
            SELECT child.relname AS child, parent_index.relname AS parent
            FROM pg_index x
            JOIN pg_class child ON child.oid = x.indexrelid
            JOIN pg_inherits i ON i.inhrelid = x.indexrelid
            JOIN pg_class parent_index ON parent_index.oid = i.inhparent
            WHERE x.indrelid = to_regclass(quote_ident(part))
        LOOP
            IF idx.child <> idx.parent || '_p' || r THEN
                EXECUTE format('ALTER INDEX %I RENAME TO %I', idx.child, idx.parent || '_p' || r);
            END IF;
        END LOOP;
    END LOOP;
END
$$;

SELECT eventsource_create_partitions('events');
