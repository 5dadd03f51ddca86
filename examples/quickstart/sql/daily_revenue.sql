-- Revenue, orders and buyers per day, country and customer segment.
SELECT e.dt, e.country, c.segment,
       count(*) FILTER (WHERE e.event_type = 'purchase') AS orders,
       sum(e.amount) AS revenue,
       avg(e.amount) FILTER (WHERE e.event_type = 'purchase') AS avg_order_value,
       count(*) AS events
FROM events e
JOIN customers c USING (customer_id)
GROUP BY e.dt, e.country, c.segment
ORDER BY e.dt, e.country, c.segment
