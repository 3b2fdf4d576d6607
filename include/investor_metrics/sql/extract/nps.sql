-- NPS responses per customer over [since_90d, end): promoters score 9-10, detractors 0-6, and the
-- score of the customer's latest response (latest responded_at, ties broken by response_id desc).
-- Responses without a customer still count towards the overall NPS (one row with a null id).
SELECT customer_id,
       count(*)                                 AS responses,
       count(*) FILTER (WHERE score >= 9)       AS promoters,
       count(*) FILTER (WHERE score <= 6)       AS detractors,
       (array_agg(score ORDER BY responded_at DESC, response_id DESC NULLS LAST))[1] AS latest_score
FROM nps_responses
WHERE responded_at >= %(since_90d)s
  AND responded_at < %(end)s
GROUP BY customer_id
ORDER BY customer_id NULLS LAST;
