"""The customers of the synthetic dataset: sign-ups along an S-curve, their first plan and billing
interval, negotiated discounts, size (users) and how much they use the product and its AI assistant.

Plans ``free`` / ``starter`` / ``professional`` / ``enterprise`` ($0 / $49 / $199 / $799 a month).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dev.demo_data.params import (
    S_CUSTOMERS,
    SCALES,
    SECOND,
    DatasetParams,
    Window,
    choice,
    quantize,
    stream_rng,
)

PLANS = ("free", "starter", "professional", "enterprise")
FREE, STARTER, PROFESSIONAL, ENTERPRISE = range(4)
SIGNUP_PLAN_P = np.array([0.18, 0.45, 0.28, 0.09])
SIGNUP_ANNUAL_P = np.array([0.0, 0.20, 0.30, 0.50])
GROWTH_MIDPOINT, GROWTH_STEEPNESS = 0.62, 5.0  # sign-up S-curve, on the span scaled to [0, 1]
DISCOUNT_P = 0.22  # share of customers with a negotiated price
DISCOUNTS = np.array([0.05, 0.10, 0.15, 0.20, 0.25])
USERS_PER_CUSTOMER = np.array([[1, 3], [2, 6], [4, 15], [10, 40]])  # inclusive range by plan
DORMANT_P = 0.06  # customers who pay but barely use the product (the at-risk list)

_NAME_PREFIXES = (
    "North", "Blue", "Iron", "Summit", "Pioneer", "Harbor", "Granite", "Cedar", "Evergreen", "Atlas",
    "Apex", "Keystone", "Riverside", "Lakeview", "Prairie", "Redwood", "Silver", "Pacific", "Frontier",
    "Oakridge", "Bayside", "Copper", "Sterling", "Highland", "Coastal", "Eagle", "Union", "Liberty",
)  # fmt: skip
_NAME_CORES = (
    "Manufacturing", "Facilities", "Logistics", "Foods", "Energy", "Plastics", "Hospitality",
    "Property Management", "Machining", "Utilities", "Packaging", "Health", "Brewing", "Metals",
    "Aviation Services", "Cold Storage", "Textiles", "Hotels", "Schools", "Water Works",
)  # fmt: skip
_NAME_SUFFIXES = ("Inc.", "LLC", "Co.", "Group", "Ltd.", "Corp.", "Partners", "Holdings")


@dataclass
class Customers:
    created: np.ndarray  # offset µs, ascending (customer_id = index + 1)
    signup_plan: np.ndarray
    signup_annual: np.ndarray
    discount: np.ndarray  # fraction off the list price
    users: np.ndarray  # number of users
    engagement: np.ndarray  # relative usage rate
    ai_propensity: np.ndarray  # relative AI request rate
    names: list[str]

    @property
    def ids(self) -> np.ndarray:
        return np.arange(1, len(self.created) + 1, dtype=np.int64)


def growth_curve_sample(rng: np.random.Generator, size: int, length: int) -> np.ndarray:
    """Offsets in [0, length) along an S-curve of sign-ups (slow start, fast middle, slowing end)."""
    x = np.linspace(0.0, 1.0, 1001)
    logistic = 1.0 / (1.0 + np.exp(-GROWTH_STEEPNESS * (x - GROWTH_MIDPOINT)))
    cdf = (logistic - logistic[0]) / (logistic[-1] - logistic[0])
    fraction = np.interp(rng.random(size), cdf, x)
    return np.minimum((fraction * length).astype(np.int64), length - 1)


def generate_customers(params: DatasetParams, window: Window) -> Customers:
    rng = stream_rng(params, S_CUSTOMERS)
    n = SCALES[params.scale].customers
    created = np.sort(quantize(growth_curve_sample(rng, n, window.length), SECOND))
    plan = choice(rng, SIGNUP_PLAN_P, n)
    annual = rng.random(n) < SIGNUP_ANNUAL_P[plan]
    discount = np.where(rng.random(n) < DISCOUNT_P, DISCOUNTS[choice(rng, np.ones(5), n)], 0.0)
    low, high = USERS_PER_CUSTOMER[plan, 0], USERS_PER_CUSTOMER[plan, 1]
    users = rng.integers(low, high + 1)
    dormant = rng.random(n) < DORMANT_P
    engagement = users**0.7 * rng.lognormal(0.0, 0.5, n) * np.where(dormant, 0.02, 1.0)
    ai_propensity = engagement * rng.lognormal(0.0, 0.7, n) * np.where(plan == FREE, 0.3, 1.0)
    names = _company_names(rng, n)
    return Customers(created, plan, annual, discount, users, engagement, ai_propensity, names)


def _company_names(rng: np.random.Generator, n: int) -> list[str]:
    prefix = rng.integers(0, len(_NAME_PREFIXES), n)
    core = rng.integers(0, len(_NAME_CORES), n)
    suffix = rng.integers(0, len(_NAME_SUFFIXES), n)
    return [
        f"{_NAME_PREFIXES[p]} {_NAME_CORES[c]} {_NAME_SUFFIXES[s]}"
        for p, c, s in zip(prefix.tolist(), core.tolist(), suffix.tolist(), strict=True)
    ]
