"""The weekly pipeline: its task bodies (``tasks``, ``email_tasks``), the run-scoped staging folder,
the extract, the metrics, the archive, the snapshot store, the two series and the alerts."""
