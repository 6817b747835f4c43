"""The Dagster UI in headless Chromium, against the live webserver of `webserver_fixtures.py`.

The instance it looks at holds what the UI's own launches wrote (a backfill of bronze → silver
for 2024-Q1…2024-Q2, gold of 2024-Q2, then every asset, ML included, over 2024-Q1…2024-Q3:
`ui_backfill_everything`, so the pages show the same state whatever order the tests run in), so the
pages show real materializations. The tests open the global asset graph, `gold/training_set`'s
page (its column lineage too) and `ml/churn_scores`' out-of-time check, check that what a person
reads there is what the lake and the instance hold, and save screenshots.

Needs Debian's Chromium (`apt-get install -y chromium`, binary /usr/bin/chromium) and the
`playwright` Python package (the `dev` extra); Playwright's own browser download is never used.
Without them the tests are skipped — except under CI (`CI=true`), where they fail.

Screenshots go to the test's temp dir; with `BATCH_PLATFORM_SCREENSHOTS=docs/screenshots`
(relative to the repository, or absolute) they are also written there, which is how the screenshots
of the README and docs/ui.md are made:

    BATCH_PLATFORM_SCREENSHOTS=docs/screenshots .venv/bin/pytest -m browser
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from batch_platform.partitions import shift, to_key, to_label
from batch_platform.tables import table_for
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.webserver_fixtures import (
    EVERYTHING_QUARTERS,
    GRAPH_ASSET_KEYS,
    MATERIALIZATIONS_QUERY,
    OUT_OF_TIME_PENDING,
    OUT_OF_TIME_WARN,
    ROOT,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # resolve no name but loopback: the browser cannot reach anything else
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]
INSTALL_HINT = (
    "`apt-get install -y chromium` (the tests use /usr/bin/chromium) and `.venv/bin/pip install playwright` "
    "(or `pip install -e '.[dev]'`); `playwright install` is not needed"
)
VIEWPORT = {"width": 3200, "height": 2000}
GRAPH_VIEWPORT = {"width": 3200, "height": 3800}
"""The expanded asset graph (18 nodes, 3,420 × 4,181 px at zoom 1) is fitted to the window's width
(zoom 0.83); the graph draws a node in full (with its footer) only at zoom ≥ 0.75, and only the
nodes inside the window: the window must hold the whole graph's height at that zoom."""
PAGE_TIMEOUT_MS = 90_000  # one page load on a loaded 2-core machine (the UI fetches a lot of GraphQL)


def _missing_browser() -> list[str]:
    missing = []
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        missing.append(f"no Chromium at {CHROMIUM}")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package is not installed")
    return missing


@pytest.fixture(scope="session")
def chromium_available() -> None:
    """Skip (fail under CI=true) saying how to install Chromium and Playwright when either is missing.

    Session-scoped and listed first by the tests, so that a missing browser skips before the
    session's webserver is started for nothing.
    """
    missing = _missing_browser()
    if missing:
        message = f"browser tests need Chromium and Playwright ({'; '.join(missing)}); install them with {INSTALL_HINT}"
        if os.environ.get("CI", "").lower() in {"true", "1"}:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser(chromium_available, tmp_path_factory):
    """Headless Debian Chromium with a fresh profile, for this module only."""
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium_profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            timezone_id="UTC",
            locale="en-US",
        )
        context.set_default_timeout(PAGE_TIMEOUT_MS)
        try:
            yield context
        finally:
            context.close()


@dataclass
class Tab:
    page: object  # playwright.sync_api.Page
    refused: list[str]  # requests to other hosts than the webserver, refused


@pytest.fixture
def tab(browser, ui_backfill_everything):
    """A tab on the live UI, once every UI launch has finished. Any request to another host than
    the webserver is refused and listed."""
    ui = ui_backfill_everything.ui
    page = browser.new_page()
    refused: list[str] = []

    def only_the_webserver(route):
        url = route.request.url
        if url.startswith(ui.url + "/") or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    page.route("**/*", only_the_webserver)
    yield Tab(page, refused)
    page.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> list[Path]:
    """Where screenshots go: a temp dir, plus $BATCH_PLATFORM_SCREENSHOTS when set."""
    folders = [tmp_path_factory.mktemp("screenshots")]
    if target := os.environ.get("BATCH_PLATFORM_SCREENSHOTS"):
        folder = Path(target) if Path(target).is_absolute() else ROOT / target
        folder.mkdir(parents=True, exist_ok=True)
        folders.append(folder)
    return folders


def _save(page, screenshots: list[Path], name: str) -> Path:
    first = screenshots[0] / name
    page.screenshot(path=str(first))
    for folder in screenshots[1:]:
        shutil.copyfile(first, folder / name)
    assert first.stat().st_size > 10_000, f"{first} is suspiciously small"
    return first


def _open(page, url: str, ready_text: str) -> None:
    """Go to `url`, get the first-visit "Join the Dagster community" dialog out of the way, wait for `ready_text`."""
    page.goto(url, wait_until="domcontentloaded")
    ready = page.get_by_text(ready_text, exact=True).first
    skip = page.get_by_role("button", name="Skip", exact=True)
    ready.or_(skip).first.wait_for()
    # the dialog opens a moment after the page on a first visit (telemetry off or not)
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        skip.wait_for(timeout=5_000)
    except PlaywrightTimeout:
        pass  # no dialog: nothing to dismiss
    else:
        skip.click()
        skip.wait_for(state="hidden")
    ready.wait_for()


def test_asset_graph_shows_every_table_by_layer_and_the_lineage_of_the_training_set(
    chromium_available, ui_materialized, tab, screenshots
):
    from playwright.sync_api import expect

    ui, page = ui_materialized.ui, tab.page
    page.set_viewport_size(GRAPH_VIEWPORT)
    _open(page, f"{ui.url}/asset-groups", "Global asset lineage")
    # four layer groups, collapsed by default; the graph's settings menu expands them
    for group in ("bronze", "silver", "gold", "ml"):
        page.get_by_text(group, exact=True).first.wait_for()
    # room for the graph: hide the app navigation (before expanding: the graph fits itself to the window then)
    page.get_by_role("button", name="Hide navigation").click()
    page.get_by_text("Hide navigation", exact=True).wait_for(state="hidden")
    # expand the groups (the graph's settings menu)
    page.locator("#zoom-slider-container").get_by_role("button", name="settings").click()
    page.get_by_role("menuitem", name="Expand all groups").click()
    page.keyboard.press("Escape")
    page.mouse.move(1, GRAPH_VIEWPORT["height"] - 1)  # no node under the pointer: none highlighted
    for _, name in GRAPH_ASSET_KEYS:
        page.get_by_text(name, exact=True).first.wait_for()
    # full-size nodes (not the zoomed-out labels only): every node shows its number of partitions
    node_footers = page.get_by_text(re.compile(r"^\d+ partitions$"))
    expect(node_footers).to_have_count(len(GRAPH_ASSET_KEYS), timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(1_500)  # let the fit-to-window animation end before the picture (not an assertion)
    _save(page, screenshots, "asset-graph.png")

    # lineage of gold/training_set, all the way up: the whole bronze → silver → gold chain
    _open(page, f"{ui.url}/assets/gold/training_set?view=lineage&lineageScope=upstream&lineageDepth=4", "training_set")
    upstream = {
        "customer_features",
        "churn_labels",
        "operational_events",
        "interaction_logs",
        "partner_scores",
        "operational",
        "logs",
        "external",
    }
    for name in upstream:
        page.get_by_text(name, exact=True).first.wait_for()
    # quarantines are side outputs, not inputs of gold: not in its lineage
    assert page.get_by_text("operational_events_quarantine", exact=True).count() == 0
    assert tab.refused == [], f"the UI tried to reach other hosts: {tab.refused}"


def test_gold_asset_page_shows_what_the_lake_holds(chromium_available, ui_materialized, tab, screenshots):
    ui, page = ui_materialized.ui, tab.page
    events = ui.graphql(MATERIALIZATIONS_QUERY, {"assetKey": {"path": ["gold", "training_set"]}, "partitions": None})[
        "assetOrError"
    ]["assetMaterializations"]
    latest = max(events, key=lambda e: float(e["timestamp"]))
    quarter = to_label(latest["partition"])
    version = int(next(e["intRepr"] for e in latest["metadataEntries"] if e["label"] == "delta_version"))
    training = lake_quarter(ui.lake.resolve(), "gold/training_set", quarter, version=version)
    description = ui.graphql('query { assetNodes(assetKeys: [{path: ["gold", "training_set"]}]) { description } }')[
        "assetNodes"
    ][0]["description"]

    _open(page, f"{ui.url}/assets/gold/training_set", "Row count")
    # Status: the latest materialization's partition key and row count, as in the lake
    text = page.locator("body").inner_text()
    status = re.search(r"Latest materialization\s+.*?\s+(\d{4}-\d{2}-\d{2})\s+Row count\s+([\d,]+)", text, re.S)
    assert status, text[:2000]
    assert status.group(1) == latest["partition"]
    assert int(status.group(2).replace(",", "")) == len(training) > 0
    # Description: the asset's own
    assert description.split("\n")[0][:60] in text
    # the Columns table is the Pandera model's column schema: every column of the table, described
    columns = page.get_by_text("Columns", exact=True).first
    columns.wait_for()
    for column in training.columns:
        page.get_by_role("cell", name=column, exact=True).first.wait_for()
    _save(page, screenshots, "gold-training-set.png")

    # Metadata of the latest materialization: the Delta table's path, as the run recorded it
    path = next(e["path"] for e in latest["metadataEntries"] if e["label"] == "path")
    assert path.removeprefix("file:").rstrip("/") == str(ui.lake.resolve() / "gold" / "training_set")
    page.get_by_text(path, exact=True).first.wait_for()
    page.get_by_text("Metadata", exact=True).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    _save(page, screenshots, "gold-training-set-metadata.png")

    # the Partitions tab: the backfilled quarters materialized out of every quarter so far
    _open(page, f"{ui.url}/assets/gold/training_set?view=partitions", f"Materialized ({len(EVERYTHING_QUARTERS)})")
    page.get_by_text(latest["partition"], exact=True).first.click()
    page.get_by_text(path, exact=True).first.wait_for()
    _save(page, screenshots, "gold-training-set-partitions.png")
    assert tab.refused == [], f"the UI tried to reach other hosts: {tab.refused}"


def _upstream(table: str, column: str) -> str:
    """What the `column_lineage` table shows for `column` of `table`: its declared upstream columns."""
    deps = table_for(dg.AssetKey(table.split("/"))).column_lineage().deps_by_column[column]
    return ", ".join(f"{'/'.join(dep.asset_key.path)}.{dep.column_name}" for dep in deps)


def test_asset_pages_show_the_column_lineage_of_every_column(
    chromium_available, ui_backfill_everything, tab, screenshots
):
    """Dagster's own `dagster/column_lineage` is hidden by the open-source UI (it drives a Dagster+
    view); the `column_lineage` table beside it in the latest materialisation is what a person reads:
    each training-set column to its gold column, and a feature on to the silver columns it is made of."""
    ui, page = ui_backfill_everything.ui, tab.page

    def lineage_row(column: str, upstream: str):
        cells = (page.get_by_role("cell", name=column, exact=True), page.get_by_role("cell", name=upstream, exact=True))
        return page.get_by_role("row").filter(has=cells[0]).filter(has=cells[1]).first

    _open(page, f"{ui.url}/assets/gold/training_set", "Row count")
    label = page.get_by_text("column_lineage", exact=True).first
    label.wait_for()
    for column in table_for(dg.AssetKey(["gold", "training_set"])).column_lineage().deps_by_column:
        lineage_row(column, _upstream("gold/training_set", column)).wait_for()
    assert _upstream("gold/training_set", "amount_90d") == "gold/customer_features.amount_90d"
    label.evaluate("e => e.scrollIntoView({block: 'start'})")
    _save(page, screenshots, "gold-training-set-column-lineage.png")

    _open(page, f"{ui.url}/assets/gold/customer_features", "Row count")
    traced = _upstream("gold/customer_features", "amount_90d")
    assert traced == "silver/operational_events.amount, silver/operational_events.event_time"
    lineage_row("amount_90d", traced).wait_for()
    assert tab.refused == [], f"the UI tried to reach other hosts: {tab.refused}"


def test_out_of_time_warnings_show_per_quarter_on_the_node_the_checks_list_and_the_partitions_tab(
    chromium_available, ui_backfill_everything, tab, screenshots
):
    """The out-of-time check of `ml/churn_scores` after a range run: one quarter WARNs (its scores
    rank below the recency baseline), the others passed (no champion, or pending labels). The WARN
    shows on the node, in the asset's checks list and per quarter on the check's Partitions tab."""
    from playwright.sync_api import expect

    ui, page = ui_backfill_everything.ui, tab.page
    checks_view = "/assets/ml/churn_scores?view=checks"

    # the node (the asset's lineage view draws it as the asset graph does): the out-of-time check is not passed, and WARN
    _open(page, f"{ui.url}/assets/ml/churn_scores?view=lineage", "churn_scores")
    node_checks = page.locator(f"a[href='{checks_view}']:not([role=tab])")
    # two checks: out_of_time_performance (failed: the WARN quarter) and score_drift (either)
    expect(node_checks).to_have_text(re.compile(r"^[01] / 2 Passed$"))
    expect(node_checks.get_by_role("img", name="warning_outline")).to_have_count(1)
    _save(page, screenshots, "ml-churn-scores-node.png")

    # the asset's checks list: the check failed, with the WARN icon
    _open(page, f"{ui.url}{checks_view}", "out_of_time_performance")
    row = page.locator("[class*='AssetChecks_checkRow']").filter(has_text="out_of_time_performance")
    expect(row.get_by_text("Failed", exact=True)).to_be_visible()
    expect(row.get_by_role("img", name="warning_outline")).to_have_count(1)

    # the check's Partitions tab: every quarter of the run evaluated, one failed
    page.locator("button#partitions[role=tab]").click()
    page.get_by_text("Failed (1)", exact=True).wait_for()
    page.get_by_text(f"Passed ({len(EVERYTHING_QUARTERS) - 1})", exact=True).wait_for()
    warn_tag = page.locator(".BaseTag").filter(has=page.get_by_role("img", name="warning_outline"))
    page.get_by_text(to_key(OUT_OF_TIME_WARN), exact=True).first.click()
    page.get_by_text(re.compile(r"^AUC-PR [0-9.]+ is below the recency baseline's [0-9.]+$")).wait_for()
    expect(warn_tag.filter(has_text="Failed")).to_have_count(1)
    _save(page, screenshots, "ml-out-of-time-partitions.png")
    page.get_by_text(to_key(OUT_OF_TIME_PENDING), exact=True).first.click()
    page.get_by_text(f"pending: gold/churn_labels {shift(OUT_OF_TIME_PENDING, 1)} is not in the lake yet").wait_for()
    expect(warn_tag).to_have_count(0)
    assert tab.refused == [], f"the UI tried to reach other hosts: {tab.refused}"
