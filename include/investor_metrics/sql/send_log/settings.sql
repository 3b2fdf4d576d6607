-- Bounds for every send-log transaction: waiting for a row lock, or a statement, never lasts forever.
SELECT set_config('lock_timeout', %(lock_timeout)s, true),
       set_config('statement_timeout', %(statement_timeout)s, true)
