-- Which of the named tables exist (as the connection's search_path resolves them).
SELECT name
FROM unnest(CAST(:names AS text[])) AS t(name)
WHERE to_regclass(name) IS NOT NULL
