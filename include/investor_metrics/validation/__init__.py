"""Data validation of the source tables (Great Expectations) and its Data Docs site."""
