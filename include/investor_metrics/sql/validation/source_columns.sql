-- The columns of the named tables (each resolved by the connection's search_path, as
-- validation/existing_tables.sql does) with their SQL types, from information_schema.
SELECT t.name AS table_name, c.column_name, c.data_type
FROM unnest(CAST(:names AS text[])) AS t(name)
JOIN pg_catalog.pg_class AS r ON r.oid = to_regclass(t.name)
JOIN pg_catalog.pg_namespace AS n ON n.oid = r.relnamespace
JOIN information_schema.columns AS c ON c.table_schema = n.nspname AND c.table_name = r.relname
ORDER BY t.name, c.ordinal_position
