-- Find stale snapshots (many events since snapshot)
SELECT
    s.aggregate_type,
    s.aggregate_id,
    s.version as snapshot_version,
    MAX(e.version) as current_version,
    MAX(e.version) - s.version as events_since_snapshot
FROM snapshots s
JOIN events e
    ON s.aggregate_id = e.aggregate_id
    AND s.aggregate_type = e.aggregate_type
GROUP BY s.aggregate_type, s.aggregate_id, s.version
HAVING MAX(e.version) - s.version > 100
ORDER BY events_since_snapshot DESC;
