"""The "Investor metrics" page inside the real Airflow UI, in headless Chromium.

A real stack (``dev/stack/devstack.py``, as ``make demo`` starts it, without running the pipeline)
against a fresh database; the fixture snapshots and alerts of ``tests/unit/api/fixtures.py`` are
published into its metrics store. Chromium is driven through the DevTools protocol: it gets the
admin's token as the UI's ``_token`` session cookie (what signing in leaves), opens the UI at
``/plugin/investor-metrics`` (the navigation entry of the plugin) and reads the page inside the
UI's frame. The numbers shown must be the latest snapshot's; a screenshot of the whole UI is saved
(``INVESTOR_PAGE_SCREENSHOTS`` names the folder; default: the test's temporary folder).

Chromium is required, not optional: without it the test fails and says how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from datetime import datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from dev.demo_data import loader
from include.investor_metrics.settings import PostgresSettings
from tests.conftest import demo_stack
from tests.unit.api.fixtures import (
    ENTERPRISE,
    LATEST_END,
    XSS_NAME,
    XSS_TITLE,
    fill_store,
    fixture_alerts,
    fixture_snapshots,
)

pytestmark = pytest.mark.stack

CHROMIUM_INSTALL = "apt-get update && apt-get install -y chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-dev-shm-usage", "--hide-scrollbars", "--remote-debugging-port=0"]


def chromium_path() -> str:
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"headless Chromium is required for the page test and was not found: install it with "
                    f"`{CHROMIUM_INSTALL}` (Debian), or set CHROMIUM to its path", pytrace=False)
    return path


# --------------------------------------------------------------------------- a DevTools client
class Browser:
    """Headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, executable: str, profile: Path, width: int = 1440, height: int = 1500):
        self.profile = profile
        self.proc = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = (self.proc.stderr.read().decode(errors="replace")[-2000:]
                       if self.proc.poll() is not None else "")
                self.close()
                pytest.fail(f"Chromium ({executable}) did not start its DevTools endpoint: {err}",
                            pytrace=False)
            time.sleep(0.1)
        port = int(port_file.read_text().splitlines()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as resp:  # noqa: S310
            page = next(t for t in json.load(resp) if t["type"] == "page")
        from websockets.sync.client import connect as ws_connect

        self.ws = ws_connect(page["webSocketDebuggerUrl"], max_size=64 * 2**20, open_timeout=20)
        self._id = 0
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})

    def call(self, method: str, params: dict | None = None, timeout: float = 60) -> dict:
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            message = json.loads(self.ws.recv(timeout=max(0.1, deadline - time.monotonic())))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True})
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:80]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60, what: str = ""):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {what or expression}")

    def screenshot(self, path: Path) -> Path:
        import base64

        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def full_screenshot(self, path: Path) -> Path:
        """The whole document, beyond the viewport."""
        import base64

        size = self.call("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        data = self.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                     "clip": clip})["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close", timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        try:
            self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


# --------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def stack(pg_server: PostgresSettings, tmp_path_factory):
    """The demo stack against a fresh database whose metrics store holds the fixture data."""
    chromium_path()  # no Chromium: fail now, not after starting a stack
    base = tmp_path_factory.mktemp("investor-page")

    def load(settings):
        # A small source data set, so that `up` does not load the full demo one.
        loader.load(settings, end=datetime(2026, 11, 22, 9, tzinfo=timezone.utc), span_days=21, seed=7,
                       progress=False)
        fill_store(settings)

    with demo_stack(pg_server, base, "cfx_page", load) as (env, _settings, client, password):
        yield {"base_url": f"http://127.0.0.1:{env['AIRFLOW_PORT']}", "client": client, "password": password,
               "base": base}


@pytest.fixture()
def browser():
    executable = chromium_path()
    profile = Path(tempfile.mkdtemp(prefix="cfx-chromium-"))
    chrome = Browser(executable, profile)
    try:
        yield chrome
    finally:
        chrome.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture()
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("INVESTOR_PAGE_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def admin_token(stack) -> str:
    body = json.dumps({"username": "admin", "password": stack["password"]}).encode()
    request = urllib.request.Request(f"{stack['base_url']}/auth/token", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - our own loopback server
        return json.load(resp)["access_token"]


# --------------------------------------------------------------------------- expectations
def rounded(value: float, decimals: int) -> Decimal:
    # The page formats like JavaScript's toFixed: the exact binary value, ties away from zero.
    return Decimal(value).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)


def shown(value: float, fmt: str) -> str:
    decimals = {"money": 0, "count": 0, "pct1": 1, "pct2": 2, "num1": 1}[fmt]
    text = f"{abs(rounded(value, decimals)):,}"
    sign = "-" if value < 0 and rounded(value, decimals) != 0 else ""
    return {"money": f"{sign}${text}", "pct1": f"{sign}{text}%", "pct2": f"{sign}{text}%"}.get(
        fmt, sign + text)


KPIS = {  # key on the page → (path in the snapshot, format)
    "mrr": (("financial", "mrr"), "money"),
    "arr": (("financial", "arr"), "money"),
    "active_customers": (("financial", "active_customers"), "count"),
    "mrr_growth_rate": (("financial", "mrr_growth_rate"), "pct1"),
    "uptime_percentage": (("system_health", "uptime_percentage"), "pct2"),
    "nps": (("business_health", "customer_satisfaction", "nps"), "num1"),
    "ai_accuracy_rate": (("ai_platform", "accuracy_rate"), "pct1"),
}


def dig(snapshot: dict, path: tuple[str, ...]):
    for part in path:
        snapshot = snapshot[part]
    return snapshot


FRAME = "document.querySelector('iframe[title=\"Investor metrics\"]')"
FRAME_STATE = (f"(() => {{ const f = {FRAME}; const d = f && f.contentDocument;"
               " const s = d && d.body && d.body.dataset.state;"
               " return s === 'ready' || s === 'error' ? s : null; })()")
READ_PAGE = f"""(() => {{
  const doc = {FRAME}.contentDocument;
  const text = n => n ? n.textContent.trim() : null;
  return {{
    period: text(doc.getElementById('period')),
    kpis: [...doc.querySelectorAll('#kpis .kpi')].map(card => ({{
      key: card.dataset.kpi, label: text(card.querySelector('.label')),
      value: text(card.querySelector('.value')), raw: card.querySelector('.value').dataset.value,
      change: text(card.querySelector('.change')), tone: card.querySelector('.change').className,
      versus: text(card.querySelector('.versus')),
    }})),
    charts: [...doc.querySelectorAll('#charts .chart')].map(chart => ({{
      key: chart.dataset.trend, last: text(chart.querySelector('.last')),
      dots: chart.querySelectorAll('circle.dot').length, lines: chart.querySelectorAll('polyline').length,
    }})),
    alerts: [...doc.querySelectorAll('#alerts tbody tr')].map(row => ({{
      id: row.dataset.alertId, severity: row.dataset.severity,
      badge: text(row.querySelector('.badge')),
      colour: getComputedStyle(row.querySelector('.badge')).backgroundColor,
      title: text(row.querySelector('.alert-title')), week: text(row.querySelector('td.when')),
    }})),
    retention: [...doc.querySelectorAll('#retention-kpis .kpi')].map(card => ({{
      key: card.dataset.kpi, value: text(card.querySelector('.value')),
      change: text(card.querySelector('.change')),
    }})),
    cohort_head: [...doc.querySelectorAll('#cohorts thead th')].map(text),
    cohorts: [...doc.querySelectorAll('#cohorts tbody tr')].map(row => [...row.cells].map(cell => ({{
      text: cell.textContent, heat: [...cell.classList].find(c => c.startsWith('heat-')) || null,
      colour: getComputedStyle(cell).backgroundColor,
    }}))),
    plans: [...doc.querySelectorAll('#plans tbody tr')].map(row => [...row.cells].map(text)),
    plan_note: text(doc.querySelector('#depth .note')),
    movers: [...doc.querySelectorAll('#movers tbody tr')].map(row => [...row.cells].map(text)),
    movements: (() => {{
      const chart = doc.querySelector('[data-chart="movements"]');
      return {{ weeks: chart.querySelectorAll('g[data-end]').length,
               bars: [...chart.querySelectorAll('rect')].map(r => r.getAttribute('class')),
               lines: chart.querySelectorAll('polyline.net').length,
               dots: chart.querySelectorAll('circle.net-dot').length }};
    }})(),
    images: doc.querySelectorAll('img').length, bold: doc.querySelectorAll('b').length,
    title: doc.title, footer: text(doc.getElementById('footer')),
  }};
}})()"""


# --------------------------------------------------------------------------- the tests
def test_the_page_inside_the_airflow_ui_shows_the_latest_snapshot(stack, browser, screenshots):
    base = stack["base_url"]
    browser.call("Network.setCookie", {"name": "_token", "value": admin_token(stack), "url": base + "/",
                                       "httpOnly": True, "sameSite": "Lax"})
    browser.call("Page.navigate", {"url": f"{base}/plugin/investor-metrics"})
    state = browser.wait_for(FRAME_STATE, what="the investor page inside the UI")
    # The UI's navigation has the entry, and the page is in the UI's frame.
    assert browser.evaluate("[...document.querySelectorAll('a')].some(a => "
                            "(a.getAttribute('href') || '').endsWith('plugin/investor-metrics'))"), \
        "no 'Investor metrics' entry in the UI navigation"
    downloads = stack["base"] / "downloads"
    downloads.mkdir(exist_ok=True)
    browser.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    time.sleep(1)  # let the UI finish laying out before the picture
    shot = browser.screenshot(screenshots / "investor_page_in_airflow_ui.png")
    print(f"\nscreenshot of the page inside the Airflow UI: {shot}")
    page = browser.evaluate(READ_PAGE)
    assert state == "ready", f"the page shows an error: {page}"

    snapshots = fixture_snapshots()
    latest, previous = snapshots[11], snapshots[10]
    assert latest["period"]["end"] == "2026-11-22T09:00:00Z" == LATEST_END.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert page["period"] == "Week 15 Nov 2026 → 22 Nov 2026, 09:00 UTC (weekly)"

    # KPI cards: the latest snapshot's numbers, and the change against the week before.
    cards = {card["key"]: card for card in page["kpis"]}
    assert list(cards) == list(KPIS)
    for key, (path, fmt) in KPIS.items():
        value = dig(latest, path)
        assert float(cards[key]["raw"]) == value, key
        assert cards[key]["value"] == shown(value, fmt), (key, cards[key])
    assert cards["mrr"]["value"] == "$41,000" and cards["arr"]["value"] == "$492,003"
    assert cards["active_customers"]["value"] == "122" and cards["mrr_growth_rate"]["value"] == "7.9%"
    assert cards["uptime_percentage"]["value"] == "99.69%" and cards["nps"]["value"] == "41.0"
    assert cards["ai_accuracy_rate"]["value"] == "93.1%"
    # MRR 40,000.25 → 41,000.25; customers 120 → 122; uptime 99.76 → 99.69 (worse: red).
    assert dig(previous, ("financial", "mrr")) == 40000.25
    assert cards["mrr"]["change"] == "▲ +$1,000 (+2.5%)" and "tone-good" in cards["mrr"]["tone"]
    assert cards["active_customers"]["change"] == "▲ +2 (+1.7%)"
    assert cards["uptime_percentage"]["change"] == "▼ -0.07 pp"
    assert "tone-bad" in cards["uptime_percentage"]["tone"]
    assert all(card["versus"] == "vs previous week" for card in cards.values())

    # Trend charts of the history (12 snapshots: the on-demand period included), no gaps.
    charts = {chart["key"]: chart for chart in page["charts"]}
    assert set(charts) == {"mrr", "active_customers", "uptime", "nps", "ai_accuracy", "ai_requests"}
    assert all(chart["dots"] == 12 and chart["lines"] == 1 for chart in charts.values()), charts
    assert charts["mrr"]["last"] == "$41,000"

    # Recent alerts, newest first, coloured by severity, data shown as text (never as HTML).
    assert [a["severity"] for a in page["alerts"]] == [a["severity"] for a in fixture_alerts()]
    colours = {a["severity"]: a["colour"] for a in page["alerts"]}
    assert colours == {"critical": "rgb(185, 28, 28)", "high": "rgb(234, 88, 12)",
                       "medium": "rgb(202, 138, 4)", "low": "rgb(37, 99, 235)"}
    assert page["alerts"][2]["title"] == XSS_TITLE
    assert page["images"] == 0 and page["bold"] == 0 and page["title"] != "pwned"
    assert "22 Nov 2026" in page["alerts"][0]["week"]

    # SPEC 4b. Retention: the latest week's rates, against the week before (NRR 105.5 → 105.6).
    assert [(c["key"], c["value"]) for c in page["retention"]] == [
        ("nrr_12m", "105.6%"), ("grr_12m", "91.2%"), ("logo_retention_12m", "84.0%"), ("nrr_1m", "100.8%"),
        ("grr_1m", "98.9%")]
    assert page["retention"][0]["change"] == "▲ +0.1 pp" and page["retention"][1]["change"] == "no change"
    # Cohorts: 12 months oldest first; +1 … +11 months, then now; logo % coloured by tenths.
    assert page["cohort_head"] == ["Cohort", "Customers", *(f"+{k} mo" for k in range(1, 12)), "Now"]
    cohorts = page["cohorts"]
    assert [row[0]["text"] for row in cohorts] == ["2025-12", *(f"2026-{m:02d}" for m in range(1, 12))]
    oldest = [(c["text"], c["heat"]) for c in cohorts[0]]
    assert oldest[:5] == [("2025-12", None), ("8", None), ("100.0%", "heat-10"), ("87.5%", "heat-8"),
                          ("87.5%", "heat-8")]
    assert oldest[-1] == ("25.0%", "heat-2"), "8 customers, 2 still paying on 22 Nov"
    assert cohorts[0][2]["colour"] == "rgb(30, 58, 138)" and cohorts[0][-1]["colour"] == "rgb(191, 219, 254)"
    assert [c["text"] for c in cohorts[5]][1:4] == ["0", "–", "–"], "a month without members: no rate"
    newest = [c["text"] for c in cohorts[-1]]
    assert newest[:2] == ["2026-11", "11"] and newest[2:-1] == [""] * 11 and newest[-1] == "100.0%"
    # MRR by plan, largest first, then the totals; the plan-switch note.
    assert page["plans"] == [
        ["professional", "$19,500", "41", "$475.62", "$600", "$0", "$200", "-$50", "-$300", "$450"],
        [ENTERPRISE, "$13,300", "10", "$1,330.00", "$300", "$0", "$100", "$0", "$0", "$400"],
        ["starter", "$8,200", "71", "$115.49", "$300", "$0", "$50", "-$40", "-$100", "$210"],
        ["All plans", "$41,000", "122", "$334.65", "$1,200", "$0", "$350", "-$90", "-$400", "$1,060"],
    ]
    assert "switches plans shows as churned" in page["plan_note"]
    # The largest movements, names as text (the page stays XSS-safe: no <img>, no <b>).
    assert page["movers"] == [
        ["Globex Corporation", "New", "$0.00", "$1,200.00", "+$1,200.00"],
        [XSS_NAME, "Churned", "$400.00", "$0.00", "-$400.00"],
        ["Initech", "Expansion", "$250.00", "$450.00", "+$200.00"],
        ["Umbrella", "Expansion", "$100.00", "$250.00", "+$150.00"],
        ["Customer #31", "Contraction", "$300.00", "$210.00", "-$90.00"],
    ]
    # The MRR movements chart: 12 consecutive weeks, new + expansion up, contraction + churn down
    # (no reactivation in the fixture), one unbroken net new MRR line.
    assert page["movements"] == {"weeks": 12, "lines": 1, "dots": 12,
                                 "bars": ["mv-new", "mv-expansion", "mv-contraction", "mv-churned"] * 12}

    # The history as CSV: through the page's session (fetch + Blob), the API's bytes exactly.
    browser.evaluate(f"{FRAME}.contentDocument.getElementById('download').click()")
    name = browser.wait_for(f"{FRAME}.contentDocument.body.dataset.downloaded || null", what="the download")
    assert name == "investor-metrics-weekly-2026-09-06-to-2026-11-22.csv"
    saved = downloads / name
    deadline = time.monotonic() + 30
    while not saved.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    request = urllib.request.Request(f"{base}/api/investor/metrics?history=520&format=csv",
                                     headers={"Authorization": f"Bearer {admin_token(stack)}"})
    with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - our own loopback server
        expected = resp.read()
    assert saved.read_bytes() == expected
    assert expected.startswith(b"period.start,period.end,period.type,") and expected.count(b"\r\n") == 13


def test_collect_now_queues_a_run_seen_by_airflow(stack, browser, screenshots):
    base = stack["base_url"]
    browser.call("Network.setCookie", {"name": "_token", "value": admin_token(stack), "url": base + "/",
                                       "httpOnly": True, "sameSite": "Lax"})
    browser.call("Page.navigate", {"url": f"{base}/api/investor/page"})
    browser.wait_for("document.body && document.body.dataset.state === 'ready'", what="the page")
    browser.evaluate("document.getElementById('collect').click()")
    run_id = browser.wait_for("document.body.dataset.collected || null", what="the queued run")
    status = browser.evaluate("document.getElementById('collect-status').textContent")
    assert run_id in status and "Queued" in status
    browser.screenshot(screenshots / "investor_page_collect_now.png")
    run = stack["client"].request("GET", f"/api/v2/dags/investor_metrics/dagRuns/{run_id}")
    assert run["state"] == "queued" and run["run_type"] == "manual" and run["triggered_by"] == "ui"
    assert run["conf"] == {"send_email": False} and run["triggering_user_name"] == "admin"


def test_without_a_session_the_page_asks_to_sign_in(stack, browser, screenshots):
    browser.call("Page.navigate", {"url": f"{stack['base_url']}/api/investor/page"})
    text = browser.wait_for("document.body && document.body.innerText", what="the page")
    assert "Not authenticated" in text and "Sign in to Airflow" in text
    browser.screenshot(screenshots / "investor_page_signed_out.png")


# Three weeks of Europe/Berlin (Sunday 09:00): the first across the end of summer time (169 hours),
# then the week ending 8 Nov missing, then the week ending 15 Nov.
GAPPED_HISTORY = """[
  ["2026-10-18T07:00:00Z", "2026-10-25T08:00:00Z", 100],
  ["2026-10-25T08:00:00Z", "2026-11-01T08:00:00Z", 110],
  ["2026-11-08T08:00:00Z", "2026-11-15T08:00:00Z", 130]
].map(([start, end, mrr]) => ({period: {start, end, type: "weekly"},
  financial: {mrr, new_mrr: 20, reactivation_mrr: 0, expansion_mrr: 5, contraction_mrr: 0, churned_mrr: 10,
              net_new_mrr: 15}}))"""


def test_the_whole_page_and_a_missing_week_is_a_gap(stack, browser, screenshots):
    """The page alone (a full-length picture), then its charts drawn from a history with a
    missing week: the trend line and the net new MRR line break there, and the time axis keeps
    the missing week's slot; a week across a DST change still joins its neighbours."""
    base = stack["base_url"]
    browser.call("Network.setCookie", {"name": "_token", "value": admin_token(stack), "url": base + "/",
                                       "httpOnly": True, "sameSite": "Lax"})
    browser.call("Page.navigate", {"url": f"{base}/api/investor/page"})
    browser.wait_for("document.body && document.body.dataset.state === 'ready'", what="the page")
    time.sleep(0.5)
    shot = browser.full_screenshot(screenshots / "investor_page_full.png")
    print(f"\nscreenshot of the whole page: {shot}")
    drawn = browser.evaluate(f"""(() => {{
      const series = weeklySeries({GAPPED_HISTORY});
      const trend = renderChart(TRENDS[0], series), moves = renderMovementsChart(series);
      return {{follows: series.map(s => s.follows), trend_lines: trend.querySelectorAll('polyline').length,
               trend_dots: trend.querySelectorAll('circle.dot').length,
               net_lines: moves.querySelectorAll('polyline.net').length,
               net_points: [...moves.querySelectorAll('polyline.net')].map(l => l.getAttribute('points')),
               xs: [...moves.querySelectorAll('circle.net-dot')].map(c => Number(c.getAttribute('cx'))),
               labels: [...moves.querySelectorAll('svg > text')].map(t => t.textContent).slice(-3)}};
    }})()""")
    assert drawn["follows"] == [False, True, False]
    assert (drawn["trend_lines"], drawn["trend_dots"], drawn["net_lines"]) == (1, 3, 1), drawn
    assert drawn["net_points"][0].count(",") == 2, "the line joins the first two weeks only"
    first, second, third = drawn["xs"]
    assert abs((third - second) / (second - first) - 2) < 0.02, "the missing week keeps its slot"
    assert drawn["labels"] == ["25 Oct", "1 Nov", "15 Nov"]
