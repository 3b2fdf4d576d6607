"""The investor-depth sections of the weekly summary (SPEC 4b; ``mail/depth_view.py``): NRR/GRR
KPIs, the cohort retention table and its colour scale, MRR by plan, the largest movements, in the
HTML and the plain text; older snapshots without the sections; the message size."""

from __future__ import annotations

import copy
import html as html_lib
import re

from include.investor_metrics.mail.depth_view import (
    DARK_TEXT,
    LIGHT_TEXT,
    RETENTION_SCALE,
    contrast,
    retention_colours,
)
from include.investor_metrics.mail.weekly_summary import MAX_MESSAGE_BYTES
from tests.unit.mail import helpers
from tests.unit.mail.helpers import ESCAPED_SCRIPT, SCRIPT, html_of, summary, text_of, with_depth

snapshot = helpers.snapshot
history = helpers.history


def _row(html: str, attribute: str, value: str) -> str:
    match = re.search(rf'<tr {attribute}="{re.escape(value)}">(.*?)</tr>', html, re.S)
    assert match, (attribute, value)
    return match.group(1)


def _cells(row_html: str) -> list[str]:
    """The text of each cell, entities decoded (an escaped ``<`` reads ``<``)."""
    return [html_lib.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
            for cell in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def test_retention_kpis_show_their_change_against_the_previous_week(snapshot, history):
    current = with_depth(snapshot)
    previous = with_depth(history[0])
    previous["retention"].update(nrr_12m=103.87, grr_12m=91.58, nrr_1m=101.26)
    msg = summary(current, history, previous=previous)
    html, text = html_of(msg), text_of(msg)

    # 104.17 → 104.2% (pct1); +0.30 → +0.3 pp, good news when up; 91.08 vs 91.58 → -0.5 pp, bad news.
    assert _cells(_row(html, "data-kpi", "nrr_12m")) == ["Net revenue retention (12 months)", "104.2%",
                                                          "▲\xa0+0.3 pp"]
    assert 'data-tone="good"' in _row(html, "data-kpi", "nrr_12m")
    assert _cells(_row(html, "data-kpi", "grr_12m")) == ["Gross revenue retention (12 months)", "91.1%",
                                                          "▼\xa0-0.5 pp"]
    assert 'data-tone="bad"' in _row(html, "data-kpi", "grr_12m")
    assert _cells(_row(html, "data-kpi", "nrr_1m"))[1:] == ["101.3%", "no change"]
    assert _cells(_row(html, "data-kpi", "grr_1m"))[1:] == ["98.5%", "no change"]
    assert _cells(_row(html, "data-kpi", "logo_retention_12m"))[1:] == ["86.7%", "no change"]
    assert "RETENTION\n  Net revenue retention (12 months)    104.2%  +0.3 pp\n" in text
    assert "  Gross revenue retention (12 months)  91.1%   -0.5 pp\n" in text

    # Against a previous week written before SPEC 4b: the values, no change ("—").
    html = html_of(summary(current, history))
    assert _cells(_row(html, "data-kpi", "nrr_12m"))[1:] == ["104.2%", "—"]


def test_the_colour_scale_is_fixed_and_readable():
    assert retention_colours(100.0) == ("#08306b", LIGHT_TEXT)
    assert retention_colours(20.0) == ("#deebf7", DARK_TEXT)
    assert retention_colours(100.0)[0] != retention_colours(20.0)[0]
    assert retention_colours(19.99) == ("#eef5fc", DARK_TEXT)  # steps of 10 points
    assert retention_colours(-5.0)[0] == RETENTION_SCALE[0]
    assert retention_colours(250.0)[0] == RETENTION_SCALE[-1]
    # Every step keeps its text readable (WCAG AA for small text: contrast ≥ 4.5).
    for step in range(11):
        background, text = retention_colours(step * 10.0)
        assert contrast(background, text) >= 4.5, (step, background, text)


def test_cohort_table_in_html(snapshot, history):
    html = html_of(summary(with_depth(snapshot), history))
    assert "Cohort retention (customers)" in html
    header = re.search(r"Cohort</th>(.*?)</tr>", html, re.S).group(1)
    assert [re.sub(r"<[^>]+>", "", h).strip() for h in re.findall(r"<th[^>]*>(.*?)</th>", header)] == [
        "Size", *map(str, range(1, 12)), "end"]
    rows = re.findall(r'<tr data-cohort="([^"]+)">', html)
    assert rows == ["Dec 2025", "Jan 2026", "Feb 2026", "Mar 2026", "Apr 2026", "May 2026", "Jun 2026",
                    "Jul 2026", "Aug 2026", "Sep 2026", "Oct 2026", "Nov 2026"]

    december = _row(html, "data-cohort", "Dec 2025")
    assert _cells(december) == ["Dec 2025", "5", "100%", "100%", "80%", "80%", "80%", "60%", "60%", "60%",
                                "60%", "40%", "40%", "20%"]
    # The 100 % cell and the 20 % cell: different backgrounds from the fixed scale, inline.
    assert december.count('bgcolor="#08306b"') == 2 and "background-color:#08306b;color:#ffffff" in december
    assert re.search(r'<td align="center" bgcolor="#deebf7" style="[^"]*background-color:#deebf7;'
                     r'color:#111827;">20%</td>', december)
    # A cohort with only the end checkpoint: 11 empty cells, then end; an empty cohort: "—".
    assert _cells(_row(html, "data-cohort", "Nov 2026")) == ["Nov 2026", "3", *[""] * 11, "100%"]
    assert _cells(_row(html, "data-cohort", "Jul 2026")) == ["Jul 2026", "0", "—", "—", "—", "—",
                                                             *[""] * 7, "—"]
    assert "<script" not in html.lower() and "javascript" not in html.lower()


def test_plans_and_movers_in_html_escaped(snapshot, history):
    current = with_depth(snapshot)
    current["segments"]["by_plan"][SCRIPT] = dict(current["segments"]["by_plan"]["starter"], mrr=10.0)
    current["movements"]["largest"][1]["name"] = SCRIPT
    html = html_of(summary(current, history))

    plans = re.findall(r'<tr data-plan="([^"]+)">', html)
    assert plans == ["business", "starter", ESCAPED_SCRIPT]  # the largest MRR first
    assert _cells(_row(html, "data-plan", "business")) == ["business", "$18,900", "42", "$1,200", "$0",
                                                           "$349", "$450", "$0", "$1,099", "$450.00"]
    assert _cells(_row(html, "data-plan", "starter")) == ["starter", "$13,210", "85", "$540", "$0", "$0",
                                                          "$200", "$0", "$340", "$155.41"]
    assert "A customer who switches plans shows as churned on the old plan and new on the other" in html

    movers = [_cells(m) for m in re.findall(r'<tr data-mover="\d+">(.*?)</tr>', html, re.S)]
    assert len(movers) == 10
    assert movers[0] == ["Globex <Holdings> & Co", "New", "$0.00 → $1,200.00", "+$1,200.00"]
    assert ">Globex &lt;Holdings&gt; &amp; Co</td>" in html  # escaped in the HTML source
    assert movers[1] == [SCRIPT, "Churned", "$950.00 → $0.00", "-$950.00"]
    assert movers[3] == ["customer #8", "Contraction", "$700.00 → $250.00", "-$450.00"]
    assert movers[5] == ["Stark Industries", "Expansion", "$500.00 → $820.50", "+$320.50"]
    assert "<script" not in html.lower()
    assert html.count(ESCAPED_SCRIPT) == 3  # the plan (its row attribute and cell), the mover


def test_plain_text_carries_the_same_numbers(snapshot, history):
    text = text_of(summary(with_depth(snapshot), history))
    assert ("COHORT LOGO RETENTION (% of the cohort active, by months since its start)\n"
            "  cohort    size     1     2     3     4     5     6    7    8    9   10   11   end\n"
            "  Dec 2025     5  100%  100%   80%   80%   80%   60%  60%  60%  60%  40%  40%   20%\n") in text
    assert "  Jul 2026     0     —     —     —     —                                          —\n" in text
    assert "  Nov 2026     3                                                               100%\n" in text
    assert ("MRR BY PLAN\n"
            "  plan          MRR  customers     new  reactivation  expansion  contraction  churned  net new"
            "     ARPA\n"
            "  business  $18,900         42  $1,200            $0       $349         $450       $0   $1,099"
            "  $450.00\n"
            "  starter   $13,210         85    $540            $0         $0         $200       $0     $340"
            "  $155.41\n"
            "  A customer who switches plans shows as churned on the old plan and new on the other; summed\n"
            "  over plans, MRR and net new MRR equal the totals.\n") in text
    assert ("LARGEST MRR MOVEMENTS\n"
            "  customer                kind          MRR start       MRR end      change\n"
            "  Globex <Holdings> & Co  New               $0.00  →  $1,200.00  +$1,200.00\n"
            "  Initech                 Churned         $950.00  →      $0.00    -$950.00\n") in text
    assert "  customer #8             Contraction     $700.00  →    $250.00    -$450.00\n" in text
    # The movements chart's numbers, one row per stored week.
    assert ("MRR MOVEMENTS (last 12 weeks; weeks with no snapshot are not listed)\n"
            "  week       new  reactivation  expansion  contraction  churned  net new\n"
            "  6 Sep   $1,740            $0       $349         $650       $0   $1,439\n") in text
    assert "  22 Nov  $1,740            $0       $349         $650       $0   $1,439\n" in text


def test_a_snapshot_without_the_new_sections_renders_without_them(snapshot, history):
    assert "retention" not in snapshot  # the sample was written before SPEC 4b
    msg = summary(snapshot, history)
    html, text = html_of(msg), text_of(msg)
    for absent in ('data-kpi="nrr_12m"', "Cohort retention", "MRR by plan", "Largest MRR movements",
                   "switches plans"):
        assert absent not in html, absent
    for absent in ("RETENTION", "COHORT", "MRR BY PLAN", "LARGEST MRR MOVEMENTS"):
        assert absent not in text, absent
    assert "MRR movements, last 12 weeks" in html and "MRR MOVEMENTS (last 12 weeks" in text
    # A movements section with nothing in it says so; empty cohort or plan lists are left out.
    current = with_depth(snapshot)
    current["movements"]["largest"] = []
    current["retention"]["cohorts"] = []
    current["segments"]["by_plan"] = {}
    msg = summary(current, history)
    assert "No customer's MRR changed this week." in html_of(msg)
    assert "No customer's MRR changed this week." in text_of(msg)
    assert "Cohort retention" not in html_of(msg) and "MRR by plan" not in html_of(msg)


def test_the_full_message_stays_under_the_size_budget(snapshot, history):
    current = with_depth(snapshot)
    for mover in current["movements"]["largest"]:  # 10 movers with long names
        mover["name"] = (mover["name"] or "x") + " International Holdings Limited Partnership"
    assert len(current["retention"]["cohorts"]) == 12 and len(current["movements"]["largest"]) == 10
    weeks = [with_depth(week) for week in history]
    msg = summary(current, weeks, previous=weeks[0])
    size = len(msg.as_bytes())
    assert size < MAX_MESSAGE_BYTES, size
    assert len([p for p in msg.walk() if p.get_content_type() == "image/png"]) == 5
    assert copy.deepcopy(current) == current  # building the message does not change the snapshot
