"""Investor metric definitions (SPEC section 4): one small pure function per metric, frames in,
numbers out; each metric is defined once, in the module of its snapshot section:

- ``revenue.py``: financial (MRR, ARR, growth, MRR movements, ARPA, quick ratio, lead conversion)
  and the churn figures of business_health;
- ``customers.py``: satisfaction (NPS), utilisation, at-risk customers, churn risk, trajectory;
- ``system_health.py``: uptime, services, response times, status;
- ``ai_platform.py``: AI requests, rates, latency, per provider;
- ``snapshot.py``: the sections put together (``build_snapshot``);
- ``rounding.py`` (exact money and the rounding rules) and ``frames.py`` (reading the extract's
  frames) serve them all.

Inputs are the frames of ``weekly/extract.py`` (its docstring has their contracts); ``start`` and
``end`` are the period, "as of t" is the state just before t: a subscription is active as of t when
``started_at < t`` and (``ended_at`` is null or ``ended_at >= t``). Offsets (14, 28, 90 days,
1 month) are calendar offsets in the investor time zone (``Period.offset``). Thresholds
(``status``, ``churn_risk``, ``growth_trajectory``) compare the reported, rounded percentages, so a
reader (and the alert rules) see the same number the classification used; the MRR-at-risk share
is compared exactly.
"""
