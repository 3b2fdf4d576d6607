"""The investor API: the FastAPI app and its database queries."""
