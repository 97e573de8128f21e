    SELECT aggregate_id
    FROM events
    WHERE aggregate_type = 'Order'
    GROUP BY aggregate_id
    HAVING COUNT(*) > 500
    ORDER BY COUNT(*) DESC
