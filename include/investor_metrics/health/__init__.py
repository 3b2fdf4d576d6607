"""The service health probes and their incidents."""
