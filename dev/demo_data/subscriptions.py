"""Each customer's subscriptions: the main chain and the concurrent ``ai_addon``, and their rows.

Billed monthly or yearly (10 × the monthly price in one annual amount, often not divisible by 12).
Plan and billing changes end a subscription and start its replacement at the same instant; churn
(about 1–2 % of paying customers a month, annual plans at a renewal date) ends every subscription of
the customer; some churned customers come back weeks later (reactivation); some tenures carry a
concurrent ``ai_addon`` subscription. ``Accounts`` (customers with their subscriptions) is what every
event table hangs off.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dev.demo_data.columns import Chunk, free_text_column, int_column, text_column, timestamp_column
from dev.demo_data.customers import FREE, PLANS, SIGNUP_ANNUAL_P, Customers, generate_customers
from dev.demo_data.params import (
    DAY,
    MONTH,
    NO_END,
    S_ADDONS,
    S_CHURN_SPIKE,
    S_SUBSCRIPTIONS,
    SECOND,
    YEAR,
    DatasetParams,
    Window,
    quantize,
    row_choice,
    stream_rng,
)

ADDON_PLAN = "ai_addon"
ADDON_MONTHLY_CENTS = 4_900
PLAN_MONTHLY_DOLLARS = np.array([0, 49, 199, 799])
MONTHLY_CHURN = np.array([0.04, 0.026, 0.017, 0.010])  # hazard of leaving, per month
MEAN_MONTHS_TO_CHANGE = np.array([5.0, 18.0, 20.0, 30.0])  # plan or billing change
# A change's new plan (rows: from; columns: to). The diagonal is a billing-interval switch.
PLAN_CHANGE_P = np.array(
    [
        [0.00, 0.80, 0.18, 0.02],
        [0.10, 0.10, 0.72, 0.08],
        [0.02, 0.30, 0.12, 0.56],
        [0.00, 0.05, 0.80, 0.15],
    ]
)
REACTIVATION_P = 0.20
REACTIVATION_GAP_DAYS = (21, 120)
ADDON_P = np.array([0.0, 0.04, 0.15, 0.25])  # per tenure, by the tenure's first plan
CHURN_SPIKE_SHARE = 0.10
CHURN_SPIKE_MIN = 6
CHURN_SPIKE_FROM, CHURN_SPIKE_TO = 1 * DAY, 6 * DAY


@dataclass
class Subscriptions:
    customer: np.ndarray  # customer index
    plan: np.ndarray  # index into PLANS, or -1 for the add-on
    annual: np.ndarray
    amount: np.ndarray
    started: np.ndarray
    ended: np.ndarray  # NO_END when still running

    def take(self, rows: np.ndarray) -> Subscriptions:
        return Subscriptions(*(getattr(self, f)[rows] for f in _SUBSCRIPTION_FIELDS))

    @classmethod
    def concat(cls, parts: Sequence[Subscriptions]) -> Subscriptions:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in _SUBSCRIPTION_FIELDS))


_SUBSCRIPTION_FIELDS = ("customer", "plan", "annual", "amount", "started", "ended")


def subscription_amount(plan: np.ndarray, annual: np.ndarray, discount: np.ndarray) -> np.ndarray:
    """Cents: the (discounted, whole-dollar) monthly price, or 10 × it for a year."""
    monthly_dollars = np.rint(PLAN_MONTHLY_DOLLARS[plan] * (1.0 - discount)).astype(np.int64)
    return monthly_dollars * 100 * np.where(annual, 10, 1)


def simulate_subscriptions(params: DatasetParams, window: Window, customers: Customers) -> Subscriptions:
    """Each customer's chain of main subscriptions: sign-up, plan/billing changes (the replacement
    starts the instant the previous one ends), churn, and sometimes a reactivation weeks later."""
    rng = stream_rng(params, S_SUBSCRIPTIONS)
    live = np.arange(len(customers.created))
    plan, annual, t = customers.signup_plan.copy(), customers.signup_annual.copy(), customers.created.copy()
    parts: list[Subscriptions] = []
    for _round in range(500):
        if not live.size:
            break
        k = live.size
        to_churn = rng.exponential(MONTH / MONTHLY_CHURN[plan])
        to_churn = np.where(annual, np.ceil(to_churn / YEAR) * YEAR, to_churn)  # leave at renewal
        to_change = rng.exponential(MONTH * MEAN_MONTHS_TO_CHANGE[plan])
        changes = to_change < to_churn
        ends = t + np.maximum(quantize(np.minimum(to_churn, to_change), SECOND), SECOND)
        still_running = ends >= window.length
        amount = subscription_amount(plan, annual, customers.discount[live])
        parts.append(Subscriptions(live, plan, annual, amount, t, np.where(still_running, NO_END, ends)))

        new_plan, new_annual = _changed_plan(rng, plan, annual)
        gap = quantize(rng.uniform(*REACTIVATION_GAP_DAYS, k) * DAY, SECOND)
        reactivates = ~changes & (rng.random(k) < REACTIVATION_P)
        next_start = np.where(changes, ends, ends + gap)
        go_on = ~still_running & (changes | reactivates) & (next_start < window.length)
        plan = np.where(changes, new_plan, plan)[go_on]
        annual = np.where(changes, new_annual, annual)[go_on]
        live, t = live[go_on], next_start[go_on]
    else:  # pragma: no cover - every round moves time forward by at least a second
        raise RuntimeError("subscription simulation did not converge")
    return Subscriptions.concat(parts)


def _changed_plan(
    rng: np.random.Generator, plan: np.ndarray, annual: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The plan after a change; staying on the same plan means switching the billing interval."""
    new_plan = row_choice(rng, PLAN_CHANGE_P, plan)
    to_annual = rng.random(len(plan)) < SIGNUP_ANNUAL_P[new_plan]
    new_annual = np.where(new_plan == plan, ~annual, np.where(plan == FREE, to_annual, annual))
    return new_plan, new_annual & (new_plan != FREE)


def is_active_as_of(subs: Subscriptions, t: int) -> np.ndarray:
    """SPEC section 4: started before t and not ended before t."""
    return (subs.started < t) & (subs.ended >= t)


def apply_churn_spike(params: DatasetParams, window: Window, subs: Subscriptions) -> Subscriptions:
    """~10 % of the customers with MRR > 0 at the spike week's start churn in its middle."""
    if params.churn_spike_week is None:
        return subs
    rng = stream_rng(params, S_CHURN_SPIKE)
    week_start = window.offset(params.churn_spike_week)
    paying = np.unique(subs.customer[is_active_as_of(subs, week_start) & (subs.amount > 0)])
    how_many = min(len(paying), max(CHURN_SPIKE_MIN, round(CHURN_SPIKE_SHARE * len(paying))))
    chosen = np.sort(rng.choice(paying, size=how_many, replace=False))
    churn_at = np.full(int(subs.customer.max()) + 1, NO_END, dtype=np.int64)
    spread = rng.integers(CHURN_SPIKE_FROM, CHURN_SPIKE_TO, how_many)
    churn_at[chosen] = week_start + quantize(spread, SECOND)
    cut = churn_at[subs.customer]
    kept = subs.take(np.flatnonzero(subs.started < cut))
    kept.ended = np.minimum(kept.ended, cut[subs.started < cut])
    return kept


@dataclass
class Tenures:
    """Per main subscription: when the customer's unbroken run of subscriptions ends."""

    end: np.ndarray  # NO_END while still a customer
    first: np.ndarray  # index of the tenure's first subscription (for each subscription)


def tenures_of(subs: Subscriptions) -> Tenures:
    """Main subscriptions must be sorted by (customer, started)."""
    same_customer = np.r_[False, subs.customer[1:] == subs.customer[:-1]]
    continues = same_customer & np.r_[False, subs.started[1:] == subs.ended[:-1]]
    tenure = np.cumsum(~continues) - 1
    first = np.flatnonzero(~continues)
    last = np.r_[first[1:] - 1, len(subs.started) - 1]
    return Tenures(end=subs.ended[last][tenure], first=first[tenure])


def generate_addons(
    params: DatasetParams, window: Window, subs: Subscriptions, tenures: Tenures
) -> Subscriptions:
    """A concurrent ``ai_addon`` subscription on some tenures, running until the tenure ends."""
    rng = stream_rng(params, S_ADDONS)
    firsts = np.unique(tenures.first)
    start, end = subs.started[firsts], tenures.end[firsts]
    length = np.minimum(end, window.length) - start
    wanted = (rng.random(len(firsts)) < ADDON_P[subs.plan[firsts]]) & (length >= 2 * SECOND)
    delay = quantize(rng.random(len(firsts)) * 0.5 * length, SECOND)
    rows = np.flatnonzero(wanted)
    n = len(rows)
    return Subscriptions(
        customer=subs.customer[firsts][rows],
        plan=np.full(n, -1),
        annual=np.zeros(n, dtype=bool),
        amount=np.full(n, ADDON_MONTHLY_CENTS, dtype=np.int64),
        started=start[rows] + delay[rows],
        ended=end[rows],
    )


@dataclass
class Accounts:
    """Customers with their subscriptions: what every event table hangs off."""

    customers: Customers
    main: Subscriptions  # sorted by (customer, started)
    tenures: Tenures
    subscriptions: Subscriptions  # main + add-ons, in subscription_id order
    current_plan: np.ndarray  # per customer, the plan of the latest main subscription


def generate_accounts(params: DatasetParams, window: Window) -> Accounts:
    customers = generate_customers(params, window)
    main = simulate_subscriptions(params, window, customers)
    main = apply_churn_spike(params, window, main)
    main = main.take(np.lexsort((main.started, main.customer)))
    tenures = tenures_of(main)
    addons = generate_addons(params, window, main, tenures)
    everything = Subscriptions.concat([main, addons])
    order = np.lexsort((everything.plan < 0, everything.customer, everything.started))
    last_of_customer = np.r_[main.customer[1:] != main.customer[:-1], True]
    current_plan = np.empty(len(customers.created), dtype=np.int64)
    current_plan[main.customer[last_of_customer]] = main.plan[last_of_customer]
    return Accounts(customers, main, tenures, everything.take(order), current_plan)


def customers_chunk(window: Window, accounts: Accounts) -> Chunk:
    c = accounts.customers
    return Chunk(
        "customers",
        [
            int_column("customer_id", c.ids),
            free_text_column("name", c.names),
            text_column("plan", PLANS, accounts.current_plan),
            timestamp_column("created_at", window, c.created),
        ],
    )


def subscriptions_chunk(window: Window, accounts: Accounts) -> Chunk:
    s = accounts.subscriptions
    plans = (*PLANS, ADDON_PLAN)
    return Chunk(
        "subscriptions",
        [
            int_column("subscription_id", np.arange(1, len(s.started) + 1)),
            int_column("customer_id", s.customer + 1),
            text_column("plan", plans, np.where(s.plan < 0, len(PLANS), s.plan)),
            text_column("billing_interval", ("month", "year"), s.annual.astype(np.int64)),
            int_column("amount_cents", s.amount),
            timestamp_column("started_at", window, s.started),
            timestamp_column("ended_at", window, s.ended),
        ],
    )
