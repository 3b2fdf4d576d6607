-- Leads per source created in [since_28d, end); converted = converted before the period end.
SELECT source,
       count(*)                                       AS leads,
       count(*) FILTER (WHERE converted_at < %(end)s) AS converted
FROM leads
WHERE created_at >= %(since_28d)s
  AND created_at < %(end)s
GROUP BY source
ORDER BY source NULLS LAST;
