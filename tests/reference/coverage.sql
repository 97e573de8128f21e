-- PostgreSQL: Count aggregates with/without snapshots
SELECT
    e.aggregate_type,
    COUNT(DISTINCT e.aggregate_id) as total_aggregates,
    COUNT(DISTINCT s.aggregate_id) as with_snapshot,
    COUNT(DISTINCT e.aggregate_id) - COUNT(DISTINCT s.aggregate_id) as without_snapshot
FROM events e
LEFT JOIN snapshots s
    ON e.aggregate_id = s.aggregate_id
    AND e.aggregate_type = s.aggregate_type
GROUP BY e.aggregate_type;
