"""Feature drift checked per quarter on real gold runs (SPEC.md, "Monitoring")."""

import re
from pathlib import Path

import dagster as dg
import pytest
import yaml

from batch_platform.assets.gold import build_gold_assets
from batch_platform.cli import main
from batch_platform.features import PROFILE_FEATURES
from batch_platform.monitoring import FEATURE_DRIFT, MONITORED, MONITORING_CHECKS, SCORE_DRIFT, build_monitoring_checks
from batch_platform.partitions import quarter_range, shift
from batch_platform.resources import build_resources
from batch_platform_tests.gold_fixtures import fill_customer_history, random_silver, write_silver
from batch_platform_tests.ml_fixtures import GOLD, GRAPH_QUARTERS, ML, RUN, ml_config
from batch_platform_tests.platform import (
    bronze_assets,
    make_config,
    materialize_range,
    quarterly,
    silver_assets,
)

QUARTERS = quarter_range("2024-Q1", "2025-Q1")
PLANTED = "2024-Q3"
AMOUNT_FEATURES = {"total_amount", "avg_amount", "amount_90d"}


@pytest.fixture(scope="module")
def drift_run(spark, tmp_path_factory):
    """Stationary silver over five quarters, amounts tripled in silver 2024-Q3 only, and gold with a
    one-quarter lookback (features of Q read silver Q-1 alone) materialised with its drift check."""
    root = tmp_path_factory.mktemp("drift")
    config = make_config(root, batch={"lookback_quarters": 1})
    # generated from the quarter before the first, so that silver 2024-Q1 holds redeliveries and late
    # arrivals like every later quarter: without them its features would differ from the others'
    generated = random_silver([shift(QUARTERS[0], -1), *QUARTERS], customers=300, seed=11)
    rows = {table: [row for row in found if row[-1] in QUARTERS] for table, found in generated.items()}
    rows["operational_events"] = [
        (*row[:2], row[2] * 3, *row[3:]) if row[-1] == PLANTED else row for row in rows["operational_events"]
    ]
    write_silver(spark, config.lake_root, rows, QUARTERS)
    fill_customer_history(config, QUARTERS[0], QUARTERS[-1])
    gold = build_gold_assets(quarterly, config.batch)
    (root / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "dagster_home")) as instance:
        result = materialize_range(
            [*bronze_assets, *silver_assets, *gold, *build_monitoring_checks(quarterly)],
            build_resources(config),
            QUARTERS[0],
            QUARTERS[-1],
            selection=[gold[0].key],
            instance=instance,
        )
    evaluations = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == FEATURE_DRIFT}
    return root, config, evaluations


def _warned(evaluation, psi_warn=0.2) -> set[str]:
    return {
        name
        for name in MONITORED
        if (value := evaluation.metadata[f"psi/previous/{name}"].value) is not None and value >= psi_warn
    }


def test_exactly_the_planted_features_warn_in_the_quarters_whose_features_or_reference_hold_the_drift(drift_run):
    _, _, evaluations = drift_run
    by_quarter = {e.metadata["quarter"].value: e for e in evaluations.values()}

    assert set(by_quarter) == set(QUARTERS)
    # features of 2024-Q4 read silver 2024-Q3 (drifted); those of 2025-Q1 are compared with them
    assert {q for q, e in by_quarter.items() if not e.passed} == {"2024-Q4", "2025-Q1"}
    for quarter in ("2024-Q4", "2025-Q1"):
        assert _warned(by_quarter[quarter]) == AMOUNT_FEATURES
        description = by_quarter[quarter].description
        assert all(name in description for name in AMOUNT_FEATURES), description
        assert by_quarter[quarter].metadata["features_drifted"].value == len(AMOUNT_FEATURES)
    for quarter in ("2024-Q3",):
        assert _warned(by_quarter[quarter]) == set()
        assert by_quarter[quarter].metadata["max_psi"].value < 0.2


def test_a_quarter_without_a_reference_passes_and_says_so_with_nulls_not_zeros(drift_run):
    _, _, evaluations = drift_run
    first = next(e for e in evaluations.values() if e.metadata["quarter"].value == "2024-Q1")

    assert first.passed
    assert "no reference quarter" in first.description
    assert first.metadata["reference/previous"].value == "none"
    assert first.metadata["psi/previous/total_amount"].value is None
    assert first.metadata["ks/previous/total_amount"].value is None
    # gold 2024-Q1 has no lookback before the first quarter: no rows, so no null rate either
    assert first.metadata["null_rate/partner_score"].value is None


def test_every_monitored_feature_has_its_null_rate_psi_and_ks_as_numbers(drift_run):
    _, _, evaluations = drift_run
    q3 = next(e for e in evaluations.values() if e.metadata["quarter"].value == "2024-Q3")

    assert q3.metadata["reference/previous"].value == "2024-Q2"
    assert q3.metadata["reference/champion"].value == "none"
    for name in MONITORED:
        # without customer profiles the profile features are null: no PSI, never a 0
        expected = type(None) if name in PROFILE_FEATURES else float
        assert isinstance(q3.metadata[f"psi/previous/{name}"].value, expected), name
        assert 0.0 <= q3.metadata[f"null_rate/{name}"].value <= 1.0
    assert all(q3.metadata[f"null_rate/{name}"].value == 1.0 for name in PROFILE_FEATURES)
    assert 0.0 < q3.metadata["null_rate/partner_score"].value < 1.0
    assert 0.0 <= q3.metadata["ks/previous/recency_days"].value <= 1.0
    assert "ks/previous/partner_segment" not in q3.metadata


def test_each_quarter_links_a_report_page_with_its_charts(drift_run):
    _, config, evaluations = drift_run
    q4 = next(e for e in evaluations.values() if e.metadata["quarter"].value == "2024-Q4")

    report = Path(q4.metadata["report"].value)
    assert report == Path(config.lake_root) / "reports" / "monitoring" / "2024-Q4" / "feature_drift.html"
    page = report.read_text()
    assert "gold/customer_features 2024-Q4" in page and "previous = 2024-Q3" in page
    # inline: the PSI chart, and a panel of the distributions of every monitored feature with values
    # (the profile features have none here), each bin's share in 2024-Q3 and in 2024-Q4 beside its bar
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,', page)
    assert len(images) == 1
    panels = re.findall(r"<caption>(\w+) — PSI \d\.\d{3} \(previous\)</caption>(.*?)</table>", page)
    assert sorted(name for name, _ in panels) == sorted(set(MONITORED) - set(PROFILE_FEATURES))
    for name, panel in panels:
        shares = [float(s) for s in re.findall(r"</span>(\d+\.\d)%</td>", panel)]
        assert "<th>2024-Q3 (previous)</th><th>2024-Q4</th>" in panel and len(shares) % 2 == 0, name
        assert abs(sum(shares[0::2]) - 100) < 1 and abs(sum(shares[1::2]) - 100) < 1, name
    # the profile features have no PSI (no values): written as such, never drawn as a bar of 0
    psi_chart, no_psi = images[0].split("; no PSI against 2024-Q3 (previous): ")
    assert psi_chart == "PSI per feature in 2024-Q4"
    assert set(no_psi.split(", ")) == set(PROFILE_FEATURES)
    assert all(f"<td>{name}</td>" in page for name in MONITORED)


def test_a_page_against_a_quarter_without_rows_draws_no_psi_of_zero(drift_run):
    """Gold 2024-Q1 has no rows (no lookback before the first quarter): 2024-Q2's page, against it,
    has a PSI for no feature, so it draws no chart of zeros (which would read as "no drift") and no
    distributions, and says why."""
    _, _, evaluations = drift_run
    second = next(e for e in evaluations.values() if e.metadata["quarter"].value == "2024-Q2")

    assert second.metadata["reference/previous"].value == "2024-Q1"
    assert all(second.metadata[f"psi/previous/{name}"].value is None for name in MONITORED)
    page = Path(second.metadata["report"].value).read_text()
    assert "data:image/png" not in page
    assert "PSI: none, as 2024-Q2 or its references hold no values of any feature." in page
    assert "Distributions: no feature has values in a reference quarter." in page


def test_monitor_prints_each_quarters_latest_result_of_every_monitoring_check(drift_run, monkeypatch, capsys):
    root, config, _ = drift_run
    config_file = root / "config.yaml"
    config_file.write_text(
        yaml.safe_dump({"storage": config.storage.model_dump(include={"landing_root", "lake_root"})})
    )
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(config_file))
    monkeypatch.setenv("DAGSTER_HOME", str(root / "dagster_home"))

    assert main(["monitor", "--from", "2024-Q3", "--to", "2025-Q1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = {(line.split()[0], line.split()[2]): line.split(maxsplit=4) for line in lines if line[:4].isdigit()}

    assert {quarter for quarter, _ in rows} == {"2024-Q3", "2024-Q4", "2025-Q1"}
    assert {check for _, check in rows} == {"arrival_and_schema", "feature_drift", "score_drift"}
    for quarter, result in (("2024-Q3", "ok"), ("2024-Q4", "WARN"), ("2025-Q1", "WARN")):
        assert rows[(quarter, "feature_drift")][3] == result
    assert rows[("2024-Q4", "feature_drift")][4].startswith("PSI ≥ 0.2: total_amount")
    # silver was written straight into the lake: bronze and the scores were never checked
    assert rows[("2024-Q4", "score_drift")][3] == "-"
    assert lines[-1].startswith("2 warning(s)")


@pytest.fixture(scope="module")
def checked_ml(ml_lake):
    """The drift checks alone, over the ML lake's quarters as its run left them (models registered)."""
    root, instance, _ = ml_lake
    result = materialize_range(
        [*bronze_assets, *silver_assets, *GOLD, *ML, *build_monitoring_checks(GRAPH_QUARTERS)],
        build_resources(ml_config(root)),
        RUN[0],
        RUN[-1],
        selection=dg.AssetSelection.checks(*MONITORING_CHECKS[-2:]),
        instance=instance,
    )
    return root, {(e.check_name, e.metadata["quarter"].value): e for e in result.get_asset_check_evaluations()}


def test_scores_drift_is_measured_against_the_previous_quarter_and_calibrated_once_labels_exist(checked_ml, spark):
    root, found = checked_ml
    first, second, last = (found[(SCORE_DRIFT, q)] for q in RUN)

    assert first.passed and first.metadata["reference/previous"].value == "none"
    assert first.metadata["psi/previous"].value is None
    assert second.metadata["reference/previous"].value == RUN[0]
    assert isinstance(second.metadata["psi/previous"].value, float)
    assert second.passed == (second.metadata["psi/previous"].value < 0.2)

    scores = spark.read.format("delta").load(str(root / "lake" / "ml" / "churn_scores"))
    labels = spark.read.format("delta").load(str(root / "lake" / "gold" / "churn_labels"))
    for evaluation, quarter in ((first, RUN[0]), (last, RUN[-1])):
        mine = scores.where(f"quarter = '{quarter}'")
        assert evaluation.metadata["scores"].value == mine.count()
        assert evaluation.metadata["mean"].value == pytest.approx(mine.agg({"churn_probability": "avg"}).first()[0])
        q25, median, q75 = (evaluation.metadata[k].value for k in ("q25", "median", "q75"))
        assert 0 <= q25 <= median <= q75 <= 1
        above = mine.where("churn_probability > 0.5").count() / mine.count()
        assert evaluation.metadata["share_above_0_5"].value == pytest.approx(above)
    # the labels of Q+1 exist for all but the last quarter of the run
    realised = labels.where(f"quarter = '{RUN[1]}'").agg({"label": "avg"}).first()[0]
    assert first.metadata["realised_churn_rate"].value == pytest.approx(realised)
    assert first.metadata["calibration_gap"].value == pytest.approx(first.metadata["mean"].value - realised)
    assert last.metadata["realised_churn_rate"].value is None
    page = Path(first.metadata["report"].value).read_text()
    assert page.count("data:image/png;base64,") == 2 and "Calibration" not in page.split("<img")[0]
    assert "the labels of the next quarter are not in the lake yet" in Path(last.metadata["report"].value).read_text()


def test_features_are_compared_with_the_quarter_the_champion_of_the_previous_quarter_learned_from(checked_ml):
    _, found = checked_ml

    assert found[(FEATURE_DRIFT, RUN[0])].metadata["reference/champion"].value == "none"
    for quarter in RUN[1:]:
        metadata = found[(FEATURE_DRIFT, quarter)].metadata
        champion = metadata["reference/champion"].value
        assert champion in RUN[: RUN.index(quarter)]
        assert isinstance(metadata["psi/champion/recency_days"].value, float)
