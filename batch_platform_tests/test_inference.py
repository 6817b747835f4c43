"""Batch inference on new data (`batch-platform score`, `score_landing`): the scores of raw landing
files equal `ml/churn_scores` for the same files and cutoff, and bad input gets the pipeline's errors.

`scored_lake`, once for the module: a landing zone of 2024-Q1 … 2025-Q1 (lookback L = 2), the real
assets materialised on it with Dagster — bronze, silver and the customer history of 2024-Q1 …
2024-Q3, then gold, the churn model and the scores of 2024-Q3 — and its config file. Scoring at
2024-10-01 reads the operational, logs and external files of 2024-Q2 … Q3 only and the customers
files of 2024-Q1 … Q3; the landing zone also holds files of 2024-Q1, Q4 and 2025-Q1 that must not
count.

The landing files hold the ML tests' planted churn signal (`ml_fixtures.planted_silver`) written as
text — CSV, JSON lines and Parquet, with rows silver rejects and two systems' customer profiles —
rather than `sample_data`'s, on which the recency baseline mostly wins: `ml/churn_scores` needs a
champion, i.e. a best candidate that passes the promotion gate.
"""

from __future__ import annotations

import json
import random
import shutil
from collections import defaultdict
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml

from batch_platform.cli import main
from batch_platform.config import load_config
from batch_platform.inference import landing_features, run_scoring, score_landing
from batch_platform.partitions import quarter_range, shift
from batch_platform.schemas.customer_history import HISTORY_KEY
from batch_platform.schemas.gold import FEATURES_KEY
from batch_platform.score_request import AsOfError, scored_quarter
from batch_platform_tests.gold_fixtures import naive
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.ml_fixtures import GOLD, ML, MODEL_NAME, planted_silver
from batch_platform_tests.platform import TEST_SPARK, bronze_assets, materialize_range, silver_assets

L = 2
SCORED = "2024-Q3"
CUTOFF = "2024-10-01"
CHAMPION = f"models:/{MODEL_NAME}@champion"
CUSTOMERS, SEED = 800, 11
"""A population whose best candidate of 2024-Q3 passes the gate (the fixture fails, saying so, if a
change of the candidates makes it lose)."""
OPERATIONAL_HEADER = "customer_id,event_time,amount,currency,channel"


def _month_end(moment) -> str:
    following = (moment.replace(day=28) + timedelta(days=4)).replace(day=1)
    return (following - timedelta(days=1)).date().isoformat()


def write_landing(landing: Path, customers: int = CUSTOMERS, seed: int = SEED) -> None:
    """The planted rows as landing files: operational events as CSV and logs as JSON lines, one file per
    month arriving on its last day; partner scores as Parquet arriving on their as_of_date; customer
    profiles of the store system in 2024-Q1 and online updates in 2024-Q2 as CSV; and in 2024-Q2
    and Q3 operational rows that silver rejects (no customer, a time it cannot parse)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = planted_silver(customers, seed)
    by_file: dict[tuple[str, str], list] = defaultdict(list)
    for cid, moment, amount, currency, channel, _ in rows["operational_events"]:
        by_file["operational", _month_end(moment)].append(
            f"{cid},{moment.isoformat()},{amount},{currency.upper()},{channel}"
        )
    for day, dirt in (("2024-05-31", ",2024-05-02T10:00:00Z,5,EUR,web"), ("2024-08-31", "K00001,02.08.2024,5,EUR,web")):
        by_file["operational", day].append(dirt)
    for cid, kind, moment, _ in rows["interaction_logs"]:
        line = {"customer_id": cid, "log_event_type": kind, "log_timestamp": moment.strftime("%Y-%m-%d %H:%M:%S")}
        by_file["logs", _month_end(moment)].append(json.dumps(line))
    scores: dict[str, list] = defaultdict(list)
    for cid, score, segment, as_of, _ in rows["partner_scores"]:
        scores[as_of.isoformat()].append({"customer_id": cid, "partner_score": str(score), "partner_segment": segment})
    rng = random.Random(seed)
    profiles = "customer_id,source_system,updated_at,email,country,signup_date,contract,payment_method,monthly_charges"
    for cid in sorted({row[0] for row in rows["operational_events"]}):
        contract = rng.choice(["month-to-month", "one-year", "two-year"])
        by_file["customers", "2024-01-15"].append(
            f"{cid},store,2024-01-10T09:00:00Z,{cid.lower()}@example.com,de,2023-0{rng.randint(1, 9)}-01,{contract},"
            f"card,{rng.randint(20, 90)}.5"
        )
        if rng.random() < 0.3:
            by_file["customers", "2024-05-15"].append(f"{cid},online,2024-05-03,,,,month-to-month,paypal,")
    for (source, day), lines in by_file.items():
        folder = landing / source / day
        folder.mkdir(parents=True, exist_ok=True)
        if source == "logs":
            (folder / "logs.json").write_text("\n".join(lines) + "\n")
        else:
            header = profiles if source == "customers" else OPERATIONAL_HEADER
            (folder / f"{source}.csv").write_text("\n".join([header, *lines]) + "\n")
    for day, records in scores.items():
        folder = landing / "external" / day
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(records), folder / "scores.parquet")


def write_config(root: Path, landing: Path, **sections) -> Path:
    raw = {
        "storage": {"landing_root": str(landing), "lake_root": str(root / "lake")},
        "batch": {"lookback_quarters": L},
        "ml": {"train_quarters": 1},
        "mlflow": {"registered_model_name": MODEL_NAME},
        "spark": dict(TEST_SPARK),
        **sections,
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def scored_lake(tmp_path_factory) -> dict:
    from batch_platform.resources import build_resources

    root = tmp_path_factory.mktemp("inference")
    landing = root / "landing"
    write_landing(landing)
    path = write_config(root, landing)
    config = load_config(path)
    resources = build_resources(config)
    instance = dg.DagsterInstance.ephemeral()
    upstream = [key for asset in [*bronze_assets, *silver_assets] for key in asset.keys] + [HISTORY_KEY]
    built = materialize_range(
        [*bronze_assets, *silver_assets, *GOLD], resources, "2024-Q1", SCORED, selection=upstream, instance=instance
    )
    assert built.success
    ml = [key for asset in [*GOLD, *ML] for key in asset.keys if key != HISTORY_KEY]
    scored = materialize_range(
        [*bronze_assets, *silver_assets, *GOLD, *ML], resources, SCORED, selection=ml, instance=instance
    )
    assert scored.success
    following = materialize_range(  # what the scores' features must equal, profile features included
        [*bronze_assets, *silver_assets, *GOLD],
        resources,
        shift(SCORED, 1),
        selection=[FEATURES_KEY],
        instance=instance,
    )
    assert following.success
    scores = lake_quarter(config.lake_root, "ml/churn_scores", SCORED)
    if scores.empty:
        pytest.fail(f"no champion of {SCORED} on this population: change CUSTOMERS or SEED so that one is promoted")
    return {"root": root, "landing": landing, "config_path": path, "config": config, "scores": scores}


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    columns = ["customer_id", "score_cutoff", "churn_probability", "model_version"]
    frame = frame[columns].sort_values("customer_id").reset_index(drop=True)
    cutoff = pd.to_datetime(frame["score_cutoff"])
    frame["score_cutoff"] = (cutoff.dt.tz_convert("UTC") if cutoff.dt.tz else cutoff.dt.tz_localize("UTC")).astype(
        "datetime64[us, UTC]"
    )
    return frame.astype({"model_version": "int64"})


def _score_args(lake: dict, output: Path, *, model: str = CHAMPION, landing=None, as_of: str = CUTOFF) -> list[str]:
    return [
        "score",
        "--config",
        str(lake["config_path"]),
        "--model",
        model,
        "--landing",
        str(landing or lake["landing"]),
        "--as-of",
        as_of,
        "--output",
        str(output),
    ]


def _add_operational_file(landing: Path, day: str, lines: list[str]) -> Path:
    """A CSV file of `lines` arrived on `day`, named to sort before the generator's files of that day."""
    folder = landing / "operational" / day
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "0_added.csv"
    path.write_text("\n".join([OPERATIONAL_HEADER, *lines]) + "\n")
    return path


def test_the_cli_scorer_equals_ml_churn_scores_row_for_row(scored_lake, tmp_path, capsys):
    landing = scored_lake["landing"]
    arrived = sorted(folder.name for folder in (landing / "operational").iterdir())
    assert arrived[0] < "2024-04-01" and arrived[-1] >= CUTOFF  # files before the lookback and after C are there
    output = tmp_path / "scores"
    assert main(_score_args(scored_lake, output)) == 0
    printed = capsys.readouterr().out
    expected = _sorted(scored_lake["scores"])
    found = _sorted(pd.read_parquet(output))
    assert len(found) == len(expected) > 100
    pd.testing.assert_frame_equal(found, expected, check_exact=True)
    assert set(expected["score_cutoff"]) == {pd.Timestamp(CUTOFF, tz="UTC")}
    version = int(expected["model_version"].iloc[0])
    assert f"scored {len(expected):,} customers at cutoff {CUTOFF}" in printed
    assert f"models:/{MODEL_NAME}/{version} ({CHAMPION})" in printed
    assert main(_score_args(scored_lake, output)) == 2  # the output exists: refused
    assert f"output {output} exists" in capsys.readouterr().err


def test_the_features_scored_are_gold_customer_features_of_the_quarter_starting_at_the_cutoff(scored_lake):
    found = naive(landing_features(scored_lake["landing"], CUTOFF, config=scored_lake["config"]))
    gold = lake_quarter(scored_lake["config"].lake_root, "gold/customer_features", shift(SCORED, 1))
    expected = naive(gold.sort_values("customer_id").reset_index(drop=True))
    assert len(found) == len(scored_lake["scores"]) and list(found.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(found, expected, check_dtype=False, check_exact=True)
    assert found["contract"].notna().all() and (found["payment_method"] == "paypal").any()  # the history, as of C


def test_the_python_equivalent_scores_new_rows_and_quarantines_a_bad_one_naming_file_rule_and_value(
    scored_lake, tmp_path
):
    landing = tmp_path / "landing"
    shutil.copytree(scored_lake["landing"], landing)
    added = _add_operational_file(  # on the lookback's first day: the first file of the rejected rows' examples
        landing,
        "2024-04-01",
        ["NEW0001,2024-03-30T10:00:00Z,12.5,EUR,web", "NEW0002,30/03/2024,7.0,EUR,web"],
    )
    run = run_scoring(CHAMPION, landing, date(2024, 10, 1), config=scored_lake["config"])
    found = _sorted(run.scores)
    expected = _sorted(scored_lake["scores"])
    assert "NEW0002" not in set(found["customer_id"])
    new = found[found["customer_id"] == "NEW0001"]
    assert len(new) == 1 and 0 <= new["churn_probability"].iloc[0] <= 1
    pd.testing.assert_frame_equal(found[found["customer_id"] != "NEW0001"].reset_index(drop=True), expected)
    rejected = {item.table: item for item in run.rejected}["silver/operational_events"]
    assert rejected.rejects["event_time_unparseable"] >= 1
    first = rejected.examples[0]
    assert str(added) in first
    assert first.endswith(
        ": event_time_unparseable: customer_id='NEW0002', event_time='30/03/2024', amount='7.0', currency='EUR', "
        "channel='web'"
    )
    again = score_landing(model=CHAMPION, landing=landing, as_of="2024-Q4", config=scored_lake["config"])
    pd.testing.assert_frame_equal(_sorted(again), found)


def test_a_row_bronze_cannot_read_fails_with_the_bronze_steps_own_message(scored_lake, tmp_path, capsys):
    from batch_platform.resources import build_resources

    landing = tmp_path / "landing"
    shutil.copytree(scored_lake["landing"], landing)
    added = _add_operational_file(landing, "2024-08-20", ["NEW0001,2024-08-20T10:00:00Z,12.5,EUR,web,extra,fields"])
    config = load_config(write_config(tmp_path, landing))
    result = dg.materialize(
        [bronze_assets[0]], resources=build_resources(config), partition_key="2024-07-01", raise_on_error=False
    )
    assert not result.success
    (failure,) = result.get_step_failure_events()
    pipeline = failure.step_failure_data.user_failure_data.description
    assert str(added) in pipeline and "could not be parsed" in pipeline
    capsys.readouterr()  # the run's log
    assert main(_score_args(scored_lake, tmp_path / "scores", landing=landing)) == 1
    assert capsys.readouterr().err.strip() == f"batch-platform score: {pipeline}".strip()
    assert not (tmp_path / "scores").exists()


def test_a_quarter_the_silver_check_would_stop_stops_the_scoring_naming_the_rows(scored_lake, tmp_path, capsys):
    landing = tmp_path / "landing"
    added = _add_operational_file(
        landing,
        "2024-08-20",
        ["K1,2024-08-01,5,EUR,web", ",2024-08-01,5,EUR,web", "K2,yesterday,5,EUR,web", "K3,2024-08-01,five,EUR,web"],
    )
    assert main(_score_args(scored_lake, tmp_path / "scores", landing=landing)) == 1
    err = capsys.readouterr().err
    assert "silver/operational_events 2024-Q3: 75.00% quarantined (warn above 10.00%, fail above 50.00%)" in err
    assert f"{added}: amount_unparseable: customer_id='K3', event_time='2024-08-01', amount='five'" in err
    assert f"{added}: event_time_unparseable: customer_id='K2', event_time='yesterday'" in err
    assert not (tmp_path / "scores").exists()


def test_a_landing_zone_without_files_in_the_lookback_says_so(scored_lake, tmp_path, capsys):
    assert main(_score_args(scored_lake, tmp_path / "scores", as_of="2026-01-01")) == 1
    err = capsys.readouterr().err
    assert "nothing to score: no operational landing file arrived in the lookback before the cutoff 2026-01-01" in err
    assert "dated 2025-07-01 … 2025-12-31" in err and "its files arrived 2024-01-31 … 2025-03-31" in err


def test_a_model_the_store_does_not_hold_is_named_with_what_it_holds(scored_lake, tmp_path, capsys):
    assert main(_score_args(scored_lake, tmp_path / "scores", model=f"models:/{MODEL_NAME}@nope")) == 1
    err = capsys.readouterr().err
    assert f"model models:/{MODEL_NAME}@nope not found in the MLflow store" in err
    assert "@champion → " in err and f"@champion-{SCORED} → " in err
    assert main(_score_args(scored_lake, tmp_path / "scores", model="models:/no_such_model/1")) == 1
    assert f"Registered models: {MODEL_NAME}" in capsys.readouterr().err
    (tmp_path / "elsewhere").mkdir()
    empty = {**scored_lake, "config_path": write_config(tmp_path / "elsewhere", scored_lake["landing"])}
    assert main(_score_args(empty, tmp_path / "scores")) == 1
    assert "holds no registered model yet" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("as_of", "message"),
    [
        ("2024-10-15", "as-of 2024-10-15 is not the first day of a quarter"),
        ("soon", "as-of 'soon' is not a date"),
        ("2999-01-01", "as-of 2999-01-01 is in the future"),
        ("2024-01-01", "as-of 2024-01-01: the platform's quarters start at 2024-Q1"),
    ],
)
def test_an_as_of_that_is_not_a_cutoff_is_refused_by_name_before_any_work(tmp_path, capsys, as_of, message):
    landing = tmp_path / "landing"
    landing.mkdir()
    lake = {"config_path": write_config(tmp_path, landing), "landing": landing}
    assert main(_score_args(lake, tmp_path / "scores", as_of=as_of)) == 2
    assert message in capsys.readouterr().err
    with pytest.raises(AsOfError, match=message.split(": ")[0]):
        scored_quarter(as_of, "2024-Q1")


def test_the_cutoff_is_a_quarter_start_written_as_a_date_or_a_label():
    for written in ("2026-01-01", "2026-Q1", date(2026, 1, 1)):
        assert scored_quarter(written, "2024-Q1") == "2025-Q4"
    assert quarter_range("2025-Q4", "2025-Q4") == [scored_quarter("2026-01-01", "2025-Q4")]


@pytest.mark.parametrize("model", ["runs:/0123/model", "models:/batch_platform_churn", "batch_platform_churn@champion"])
def test_a_model_uri_without_a_registered_version_is_refused(tmp_path, capsys, model):
    landing = tmp_path / "landing"
    landing.mkdir()
    lake = {"config_path": write_config(tmp_path, landing), "landing": landing}
    assert main(_score_args(lake, tmp_path / "scores", model=model)) == 2
    assert f"model {model!r} is not a registered model's URI" in capsys.readouterr().err
