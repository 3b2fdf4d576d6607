"""The weekly pipeline: its tasks, the extract, the metrics, the archive, the snapshot store and
the alerts."""
