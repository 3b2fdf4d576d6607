"""Investor depth (SPEC section 4b): retention, cohorts, MRR by plan, largest movements."""
