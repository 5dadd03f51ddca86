SELECT date_trunc('day', ordered_at) AS day, sum(amount) AS total
FROM orders
GROUP BY 1
