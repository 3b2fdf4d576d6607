-- GX UnexpectedRowsExpectation for "subscriptions: customer exists": the period's subscriptions
-- (started before :end; {batch} is the table, filled in by GX) whose customer_id has no row in
-- customers, a null one included. An anti-join: a customer listed twice still counts once.
SELECT b.subscription_id, b.customer_id
FROM {batch} AS b
LEFT JOIN customers AS c ON c.customer_id = b.customer_id
WHERE b.started_at < :end
  AND c.customer_id IS NULL
