-- eventsource snapshots table (PostgreSQL), partitioned layout: the reference guide's
-- columns, constraint name and indexes, hash-partitioned by aggregate_id. The guide's
-- unique constraint uq_snapshots_aggregate is the primary key; id stays, numbered, no
-- longer a key (a key must include aggregate_id). The partition count is read from the
-- setting `eventsource.partitions` (8 when unset), as for events.
CREATE TABLE IF NOT EXISTS snapshots (
    id BIGSERIAL NOT NULL,
    aggregate_id UUID NOT NULL,
    aggregate_type VARCHAR(255) NOT NULL,
    version INTEGER NOT NULL,
    schema_version INTEGER NOT NULL DEFAULT 1,
    state JSONB NOT NULL,
    created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT NOW(),
    CONSTRAINT uq_snapshots_aggregate PRIMARY KEY (aggregate_id, aggregate_type)
) PARTITION BY HASH (aggregate_id);

CREATE INDEX IF NOT EXISTS idx_snapshots_aggregate_lookup
    ON snapshots(aggregate_id, aggregate_type);
CREATE INDEX IF NOT EXISTS idx_snapshots_aggregate_type
    ON snapshots(aggregate_type);
CREATE INDEX IF NOT EXISTS idx_snapshots_schema_version
    ON snapshots(aggregate_type, schema_version);
CREATE INDEX IF NOT EXISTS idx_snapshots_created_at
    ON snapshots(created_at);

-- The partitions snapshots_p0 .. snapshots_p<N-1>, their indexes named as for events
-- (eventsource_create_partitions comes with 0001_events.sql).
SELECT eventsource_create_partitions('snapshots');
