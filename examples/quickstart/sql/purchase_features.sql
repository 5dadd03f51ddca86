-- Features of a browsing event for the purchase-propensity model: the
-- names match the model's feature names (models/purchase_propensity.json).
SELECT e.event_id, e.customer_id, e.dt,
       e.session_ms / 1000.0                        AS session_s,
       e.price,
       e.is_mobile,
       hour(e.ts)                                   AS hour,
       c.lifetime_value,
       date_diff('day', c.signup_date, e.dt)        AS tenure_days
FROM events e
JOIN customers c USING (customer_id)
WHERE e.event_type <> 'purchase'
