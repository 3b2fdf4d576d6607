"""The investor-metrics product: settings, periods and database access at the top level, one
subpackage per concern (weekly pipeline, validation, health probes, mail, investor API, runtime)."""
