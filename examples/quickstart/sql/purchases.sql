-- Purchases with the buyer's segment, one row per purchase event.
SELECT e.event_id, e.ts, e.dt, e.customer_id, c.segment, e.country,
       e.device, e.quantity, e.amount
FROM events e
JOIN customers c USING (customer_id)
WHERE e.event_type = 'purchase' AND e.amount > 0
