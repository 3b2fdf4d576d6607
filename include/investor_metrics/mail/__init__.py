"""The e-mails: building the messages (no I/O) and sending them exactly once."""
