"""The quarterly ML loop (SPEC.md, "ML"): real Spark MLlib, a real local MLflow store (SQLite and
an artifact folder in the test's temp dir), real Dagster runs through the real IO manager.

The lake is silver written straight into a temporary folder (as the silver assets would), with a
planted churn signal: each customer has an engagement e in (0, 1) that sets how often it buys, its
partner score, and how likely it is to stop for good at the start of each quarter. Lookback L = 2
keeps the Spark work small: silver 2024-Q1 … 2025-Q1, one run for gold and ML of 2024-Q3 … 2025-Q1.
"""

import math
import re
import shutil
from pathlib import Path

import dagster as dg
import mlflow
import numpy as np
import pandas as pd
import pytest
from pyspark.sql import functions as F

from batch_platform import delta
from batch_platform.assets.ml import (
    MODEL_KEY,
    OUT_OF_TIME,
    PROMOTION_GATE,
    SCORES_KEY,
)
from batch_platform.config import parse_config
from batch_platform.consume import load_scores
from batch_platform.ml.candidates import CANDIDATES, INTERVALS, METRICS
from batch_platform.ml.metrics import evaluate
from batch_platform.ml.out_of_time import out_of_time_result
from batch_platform.ml.scoring import scoring_features
from batch_platform.ml.splits import pooled_counts, pooled_quarters, untrainable_reason
from batch_platform.partitions import quarter_end, to_key
from batch_platform_tests.lake_fixtures import commit_quarters, lake_quarter
from batch_platform_tests.ml_fixtures import (
    GOLD,
    GRAPH_QUARTERS,
    MODEL_NAME,
    RUN,
    L,
    ml_config,
    planted_silver,
    run_ml,
    store_client,
    training_rows,
)
from batch_platform_tests.platform import make_config, materialisations

NAMES = [candidate.name for candidate in CANDIDATES]


def registry_versions(root: Path) -> list:
    client = store_client(root)
    return sorted(
        client.search_model_versions(f"name = '{MODEL_NAME}'"),
        key=lambda v: int(v.version),
    )


# --------------------------------------------------------------------------------- training
def test_training_on_the_planted_signal_registers_a_champion_per_quarter_that_beats_chance(
    ml_lake,
):
    root, _, result = ml_lake
    metadata = materialisations(result, MODEL_KEY)
    assert sorted(metadata) == [to_key(q) for q in RUN]
    # The module's store is shared: a rerun test may already have added versions after the range run's.
    # Every quarter's best candidate is registered, whatever the promotion gate decided.
    versions = registry_versions(root)[: len(RUN)]
    assert [v.tags["quarter"] for v in versions] == RUN
    client = store_client(root)
    for key, quarter, version in zip(sorted(metadata), RUN, versions, strict=True):
        found = metadata[key]
        assert found["trained"] is True
        assert found["eval/auc_roc"] > 0.8, (quarter, found)
        assert 0 < found["eval/auc_pr"] <= 1 and found["baseline/auc_pr"] > 0
        for prefix in ("eval", "baseline"):
            for name in ("auc_pr", "auc_roc"):
                low, high = found[f"{prefix}/{name}_ci_low"], found[f"{prefix}/{name}_ci_high"]
                assert low < found[f"{prefix}/{name}"] < high, (quarter, prefix, name)
        assert found["best_candidate"] in NAMES
        assert found["best_model_version"] == int(version.version)
        for name in ("auc_pr", "auc_roc", *INTERVALS):  # the version is tagged with its eval metrics
            assert float(version.tags[f"eval_{name}"]) == pytest.approx(found[f"eval/{name}"], abs=2e-6), name
        # each candidate's training time, plotted across quarters in the UI and logged with its run, and the
        # hyperparameters its grid chose on the validation fold
        assert {k for k in found if k.startswith("fit_seconds/")} == {f"fit_seconds/{c}" for c in NAMES}
        assert all(found[f"fit_seconds/{c}"] > 0 for c in NAMES)
        assert {k for k in found if k.startswith("params/")} == {f"params/{c}" for c in NAMES}
        assert found["params/gradient_boosted_trees"].startswith("maxDepth=") and found["train_quarters"] == quarter
        assert found["promoted"] == found["gate/promoted"] and found["gate/tolerance"] == 0.01
        card = lake_quarter(root / "lake", "ml/churn_model", quarter)
        expected = [*NAMES, "recency_baseline"]
        assert sorted(set(card["candidate"]) - {"previous_champion"}) == sorted(expected)
        # The first quarter of a new store has no champion before it: the gate compares with the baseline only.
        assert ("previous_champion" in set(card["candidate"])) == ("gate/previous_champion_auc_pr" in found)
        assert (quarter == RUN[0]) == ("gate/previous_champion_auc_pr" not in found)
        best = card[card["candidate"] == found["best_candidate"]]
        assert best["auc_pr"].iloc[0] == card[card["candidate"].isin(NAMES)]["auc_pr"].max()
        assert best["model_version"].iloc[0] == int(version.version)
        champion = card[card["champion"]]
        assert len(champion) == (1 if "model_version" in found else 0)
        if len(champion):
            assert champion["model_version"].iloc[0] == found["model_version"]
            assert (champion["candidate"].iloc[0] == found["best_candidate"]) == found["promoted"]
        # The link opens the best candidate's run, which holds its plots and the registered model; the
        # quarter's run (every candidate as a child) has a link of its own. No server runs for a local
        # store: the metadata says how to start its UI, where the links point.
        experiment = client.get_experiment_by_name(ml_config(root).mlflow.experiment_name).experiment_id
        best_run = best["mlflow_run_id"].iloc[0]
        assert found["mlflow_run"] == f"http://127.0.0.1:5000/#/experiments/{experiment}/runs/{best_run}"
        assert version.run_id == best_run
        plots = {a.path for a in client.list_artifacts(best_run, "plots")}
        assert plots == {"plots/pr_curve.png", "plots/calibration.png"}
        quarter_run = client.get_run(found["mlflow_quarter_run"].rsplit("/runs/", 1)[1])
        assert quarter_run.data.tags["quarter"] == quarter
        assert quarter_run.data.tags["best_candidate"] == found["best_candidate"]
        assert quarter_run.data.tags["gate"] == found["gate"]
        assert quarter_run.data.metrics["gate_promoted"] == float(found["promoted"])
        assert "`batch-platform mlflow-ui`" in found["mlflow_ui"] and "http://127.0.0.1:5000" in found["mlflow_ui"]
    version = versions[-1]
    run = client.get_run(version.run_id)
    assert {
        "auc_pr",
        "auc_pr_ci_low",
        "auc_pr_ci_high",
        "auc_roc",
        "auc_roc_ci_low",
        "auc_roc_ci_high",
        "log_loss",
        "brier",
        "lift_top_decile",
        "churn_rate",
        "baseline_auc_pr",
        "baseline_auc_pr_ci_low",
    } <= set(run.data.metrics)
    assert run.data.params["bootstrap_resamples"] == "1000" and run.data.params["bootstrap_seed"] == "42"
    params = run.data.params
    assert params["seed"] == "42" or "regParam" in params
    # the combination the grid chose on the validation fold is the one the logged classifier was fit with
    chosen = dict(pair.split("=") for pair in params["chosen_params"].split(", "))
    assert chosen and all(params[key] == value for key, value in chosen.items()), params
    assert params["validation_fraction"] == "0.25" and params["train_quarters"] == RUN[-1]
    assert len(params["grid_validation_auc_pr"].split(",")) == len(params["grid"].split(" | "))
    last = metadata[to_key(RUN[-1])]
    if "model_version" in last:
        assert int(client.get_model_version_by_alias(MODEL_NAME, "champion-2025-Q1").version) == last["model_version"]
    assert (root / "mlartifacts").is_dir()


def test_scores_are_the_champions_predictions_at_the_start_of_the_next_quarter(ml_lake, spark):
    root, _, result = ml_lake
    recorded = materialisations(result, SCORES_KEY)
    for quarter in RUN:  # the scoring throughput of the step, plotted across quarters
        found = recorded[to_key(quarter)]
        assert found["rows_per_second"] > 0
        assert found["rows_per_second"] == pytest.approx(
            sum(recorded[to_key(q)]["dagster/row_count"] for q in RUN)
            / (found["io_seconds/count_and_check"] + found["io_seconds/write"]),
            rel=0.01,
        )
    cards = {q: lake_quarter(root / "lake", "ml/churn_model", q) for q in RUN}
    champions = {q: card[card["champion"]].iloc[0] for q, card in cards.items() if card["champion"].any()}
    card_versions = {q: int(row["model_version"]) for q, row in champions.items()}
    for quarter in RUN:
        scores = load_scores(quarter, lake_root=root / "lake")
        if quarter not in champions:
            assert scores.empty
            continue
        assert len(scores) and scores["customer_id"].is_unique
        assert scores["churn_probability"].between(0, 1).all()
        assert (scores["score_cutoff"] == pd.Timestamp(quarter_end(quarter))).all()
        assert set(scores["model_version"]) == {card_versions[quarter]}
        assert set(scores["promoted"]) == {champions[quarter]["candidate"] != "previous_champion"}
    mlflow.set_tracking_uri(f"sqlite:///{root}/mlflow.db")
    mlflow.set_registry_uri(f"sqlite:///{root}/mlflow.db")
    model = mlflow.spark.load_model(f"models:/{MODEL_NAME}/{card_versions['2024-Q4']}")
    assert model is not None


def test_scoring_features_of_q_equal_gold_customer_features_of_q_plus_one(ml_lake, spark):
    """No train/serve skew: the features scored at the end of 2024-Q3 and 2024-Q4 are, column for
    column, the gold/customer_features of 2024-Q4 and 2025-Q1 that the run wrote to the lake."""
    root, _, _ = ml_lake
    silver = {
        t: spark.read.format("delta").load(str(root / "lake" / "silver" / t))
        for t in ("operational_events", "interaction_logs", "partner_scores")
    }
    scored = scoring_features(
        silver["operational_events"],
        silver["interaction_logs"],
        silver["partner_scores"],
        ["2024-Q3", "2024-Q4"],
        L,
    )
    for quarter, following in (("2024-Q3", "2024-Q4"), ("2024-Q4", "2025-Q1")):
        mine = scored.filter(F.col("quarter") == quarter).drop("quarter").toPandas()
        gold = lake_quarter(root / "lake", "gold/customer_features", following)
        mine = mine.sort_values("customer_id").reset_index(drop=True)
        gold = gold.sort_values("customer_id").reset_index(drop=True)[list(mine.columns)]
        assert len(mine) > 500
        pd.testing.assert_frame_equal(mine, gold, check_dtype=False)
        scores = load_scores(quarter, lake_root=root / "lake")
        assert set(scores["customer_id"]) == set(gold["customer_id"])


def test_out_of_time_check_records_one_result_per_quarter_of_a_three_quarter_run(
    ml_lake,
):
    _, _, result = ml_lake
    found = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == OUT_OF_TIME}
    assert sorted(found) == [to_key(q) for q in RUN]
    for quarter in RUN[:2]:
        evaluation = found[to_key(quarter)]
        metadata = {k: v.value for k, v in evaluation.metadata.items()}
        assert metadata["evaluated"] is True and metadata["customers"] > 500
        assert metadata["scored_not_labelled"] == 0 and metadata["labelled_not_scored"] == 0
        assert metadata["out_of_time/auc_roc"] > 0.8
        assert 0 < metadata["baseline/auc_pr"] <= 1
        assert evaluation.passed == (metadata["out_of_time/auc_pr"] >= metadata["baseline/auc_pr"])
    pending = found[to_key(RUN[-1])]
    assert pending.passed and "gold/churn_labels 2025-Q2 is not in the lake" in pending.description


def test_out_of_time_result_warns_below_the_baseline_and_on_unmatched_customers():
    rows = pd.DataFrame(
        {
            "customer_id": list("abcdef"),
            "churn_probability": [0.1, 0.9, 0.2, 0.8, 0.3, np.nan],
            "label": [1, 0, 1, 0, 0, 1],
            "recency_days": [90, 1, 80, 2, 3, 50],
        }
    )
    result = out_of_time_result("2025-Q1", rows, labels_exist=True)
    assert not result["passed"] and result["severity"] == dg.AssetCheckSeverity.WARN
    assert "below the recency baseline" in result["description"]
    assert "1 labelled customers were not scored" in result["description"]
    assert result["metadata"]["baseline/auc_roc"] == 1.0 and result["metadata"]["out_of_time/auc_roc"] == 0.0
    assert out_of_time_result("2025-Q1", rows, labels_exist=False)["metadata"]["evaluated"] is False


# ---------------------------------------------------------------------------- re-running
def test_rerunning_a_quarter_registers_a_new_version_and_replaces_only_its_scores(
    ml_lake,
    tmp_path,
):
    # A copy of the module's lake and MLflow store: the other tests of the module, in any order, keep
    # reading the range run's versions and scores.
    shared, instance, _ = ml_lake
    root = Path(shutil.copytree(shared, tmp_path / "ml"))
    lake = root / "lake"
    before = {q: load_scores(q, lake_root=lake).sort_values("customer_id", ignore_index=True) for q in RUN}
    versions_before = registry_versions(root)
    result = run_ml(
        ml_config(root),
        "2024-Q4",
        "2024-Q4",
        selection=[MODEL_KEY, SCORES_KEY],
        instance=instance,
    )
    assert result.success
    after = {q: load_scores(q, lake_root=lake).sort_values("customer_id", ignore_index=True) for q in RUN}
    versions = registry_versions(root)
    assert len(versions) == len(versions_before) + 1 and versions[-1].tags["quarter"] == "2024-Q4"
    new = int(versions[-1].version)
    assert set(after["2024-Q4"]["model_version"]) == {new}
    pd.testing.assert_frame_equal(
        before["2024-Q4"].drop(columns="model_version"),
        after["2024-Q4"].drop(columns="model_version"),
    )
    for quarter in ("2024-Q3", "2025-Q1"):
        pd.testing.assert_frame_equal(before[quarter], after[quarter])
    client = store_client(root)
    assert int(client.get_model_version_by_alias(MODEL_NAME, "champion-2024-Q4").version) == new
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == OUT_OF_TIME]
    assert evaluation.partition == to_key("2024-Q4")
    assert evaluation.metadata["evaluated"].value is True and evaluation.metadata["labels_quarter"].value == "2025-Q1"

    from batch_platform.jobs import build_jobs

    (out_of_time_sensor,) = build_jobs(GRAPH_QUARTERS)[2]
    context = dg.build_run_status_sensor_context(
        sensor_name=out_of_time_sensor.name,
        dagster_event=result.get_run_success_event(),
        dagster_instance=instance,
        dagster_run=result.dagster_run,
    )
    request = out_of_time_sensor(context)
    assert request.partition_key == to_key("2024-Q3")


def test_a_one_class_quarter_registers_nothing_says_why_and_has_empty_scores(ml_lake, tmp_path, spark):
    """Also: the scores read silver Q-L+1 … Q, and a quarter of it never materialised is never read as
    empty — the scores step fails naming the table and the quarters, and writes nothing."""
    root, _, _ = ml_lake
    quarter = "2024-Q4"
    training = spark.read.format("delta").load(str(root / "lake" / "gold" / "training_set"))
    commit_quarters(training.withColumn("label", F.lit(0)), tmp_path / "lake", "gold/training_set", [quarter])
    without_silver = run_ml(
        ml_config(tmp_path), quarter, quarter, selection=[MODEL_KEY, SCORES_KEY], raise_on_error=False
    )
    (failure,) = without_silver.get_step_failure_events()
    assert failure.step_key == "ml__churn_scores"
    message = failure.step_failure_data.user_failure_data.description
    assert re.match(r"silver/\w+: quarter\(s\) 2024-Q3, 2024-Q4 have never been materialised", message), message
    assert not (tmp_path / "lake" / "ml" / "churn_scores").exists()

    for table in ("operational_events", "interaction_logs", "partner_scores"):  # the profiles are there, empty
        shutil.copytree(root / "lake" / "silver" / table, tmp_path / "lake" / "silver" / table)
    result = run_ml(ml_config(tmp_path), quarter, quarter, selection=[MODEL_KEY, SCORES_KEY])
    assert result.success
    metadata = materialisations(result, MODEL_KEY)[to_key(quarter)]
    assert metadata["trained"] is False
    assert "0 churned" in metadata["reason"] and "nothing registered" in metadata["reason"]
    assert metadata["dagster/row_count"] == 0
    assert registry_versions(tmp_path) == []
    scores = materialisations(result, SCORES_KEY)[to_key(quarter)]
    assert scores["dagster/row_count"] == 0 and "no champion" in scores["reason"]
    assert load_scores(quarter, lake_root=tmp_path / "lake").empty


def craft_training_set(training, quarters: dict[str, str]):
    """The training set's rows of each quarter of `quarters` with labels the promotion gate decides
    for certain: `win`, churn = avg_amount below the quarter's median, which the candidates see and
    the recency baseline does not; `lose`, the same in train, while in eval churn is recency (the
    baseline ranks it perfectly: AUC-PR 1) and churners have a high avg_amount (the candidates, who
    learned "low avg_amount", rank them lower). recency_days carries the label in both splits of
    `lose` (60-89 days churned, 0-29 retained), so the baseline learns the right direction."""
    frame = training.filter(F.col("quarter").isin(list(quarters))).toPandas()
    parts = []
    for quarter, kind in quarters.items():
        rows = frame[frame["quarter"] == quarter].copy()
        low = (rows["avg_amount"] < rows["avg_amount"].median()).astype(int)
        rows["label"] = low
        if kind == "lose":
            is_eval = rows["split"] == "eval"
            rows.loc[is_eval, "label"] = 1 - low[is_eval]
            rows["recency_days"] = (rows["label"] * 60 + rows["recency_days"] % 30).astype("int32")
        parts.append(rows)
    return training.sparkSession.createDataFrame(pd.concat(parts), schema=training.schema)


@pytest.fixture(scope="module")
def relaid_rerun(ml_lake, spark, tmp_path_factory):
    """A fresh MLflow store and a training set whose quarters pass or fail the promotion gate for
    certain (`craft_training_set`): 2024-Q3 wins, 2024-Q4 loses to the baseline, 2025-Q1 wins.
    Three runs: `ml/churn_model` and `ml/churn_scores` over 2024-Q2 … 2024-Q4 in one run, 2024-Q2
    untrainable as the demo's first quarter is (no rows: no history before it); then
    `ml/churn_model` of 2024-Q3 again from the same rows written as other files (three, in another
    order); then `ml/churn_model` of 2025-Q1. The aliases after each run and 2024-Q3's model cards."""
    shared, _, _ = ml_lake
    root = tmp_path_factory.mktemp("relaid")
    shutil.copytree(shared / "lake" / "silver", root / "lake" / "silver")
    training = spark.read.format("delta").load(str(shared / "lake" / "gold" / "training_set"))
    crafted = craft_training_set(training, {"2024-Q3": "win", "2024-Q4": "lose", "2025-Q1": "win"}).persist()
    commit_quarters(crafted, root / "lake", "gold/training_set", ["2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1"])
    rows = crafted.filter(F.col("quarter") == "2024-Q3")
    runs, aliases, cards = [], [], []
    for first, last in (("2024-Q2", "2024-Q4"), ("2024-Q3", "2024-Q3"), ("2025-Q1", "2025-Q1")):
        if len(runs) == 1:
            relaid = rows.orderBy(F.rand(5)).repartition(3)
            commit_quarters(relaid, root / "lake", "gold/training_set", ["2024-Q3"], one_file=False)
            files = delta.quarter_files(delta.open_table(str(root / "lake" / "gold" / "training_set")), "2024-Q3")
            assert len(files) == 3
        selection = [MODEL_KEY, SCORES_KEY] if not runs else [MODEL_KEY]
        runs.append(run_ml(ml_config(root), first, last, selection=selection))
        aliases.append(store_client(root).get_registered_model(MODEL_NAME).aliases)
        cards.append(
            lake_quarter(root / "lake", "ml/churn_model", "2024-Q3").sort_values("candidate", ignore_index=True)
        )
    crafted.unpersist()
    return root, runs, aliases, cards


def test_the_gate_keeps_the_champion_when_the_best_loses_and_moves_it_when_it_wins(relaid_rerun):
    """2024-Q3's best is promoted (the first trained quarter: the baseline rule only); 2024-Q4's best is
    registered (version 2) but loses to the baseline, so version 1 stays the champion of 2024-Q4, and
    scores it; 2025-Q1's wins and moves `champion`. Re-running 2024-Q3 (version 3) moves its own alias
    only: never `champion`, nor the quarters decided after it."""
    root, (first, rerun, later), (aliases, rerun_aliases, later_aliases), _ = relaid_rerun
    assert first.success and rerun.success and later.success
    assert materialisations(first, MODEL_KEY)[to_key("2024-Q2")]["reason"].startswith(
        "not trained, nothing registered (no champion): 0 train rows"
    )
    assert aliases == {"champion-2024-Q3": 1, "champion-2024-Q4": 1, "champion": 1}
    assert rerun_aliases == {"champion-2024-Q3": 3, "champion-2024-Q4": 1, "champion": 1}
    assert later_aliases == {"champion-2024-Q3": 3, "champion-2024-Q4": 1, "champion-2025-Q1": 4, "champion": 4}
    assert [v.tags["quarter"] for v in registry_versions(root)] == ["2024-Q3", "2024-Q4", "2024-Q3", "2025-Q1"]

    model = materialisations(first, MODEL_KEY)
    won, lost = model[to_key("2024-Q3")], model[to_key("2024-Q4")]
    assert won["promoted"] and won["model_version"] == won["best_model_version"] == 1
    assert "gate/previous_champion_auc_pr" not in won and "no champion before it" in won["gate"]
    assert not lost["promoted"] and lost["best_model_version"] == 2 and lost["model_version"] == 1
    assert lost["gate/baseline_auc_pr"] == 1.0 and lost["gate/best_auc_pr"] < 1.0
    assert lost["gate/beats_baseline"] is False and lost["gate/previous_champion_version"] == 1
    assert "not promoted: version 1 stays the champion" in lost["gate"]
    assert f"AUC-PR {lost['gate/best_auc_pr']:.4f} < baseline 1.0000" in lost["gate"]
    card = lake_quarter(root / "lake", "ml/churn_model", "2024-Q4").set_index("candidate")
    assert card.loc["previous_champion", "champion"] and card["champion"].sum() == 1
    assert card.loc["previous_champion", "model_version"] == 1 and card["model_version"].max() == 2
    assert card.loc["previous_champion", "auc_pr"] == pytest.approx(lost["gate/previous_champion_auc_pr"], abs=1e-6)
    assert lost["champion_minus_baseline/auc_pr"] == pytest.approx(
        card.loc["previous_champion", "auc_pr"] - card.loc["recency_baseline", "auc_pr"], abs=1e-6
    )

    scores = materialisations(first, SCORES_KEY)
    assert scores[to_key("2024-Q3")] | {"model_version": 1, "promoted": True} == scores[to_key("2024-Q3")]
    assert scores[to_key("2024-Q4")] | {"model_version": 1, "promoted": False} == scores[to_key("2024-Q4")]
    assert "no champion" in scores[to_key("2024-Q2")]["reason"]
    for quarter, promoted in (("2024-Q3", True), ("2024-Q4", False)):
        found = load_scores(quarter, lake_root=root / "lake")
        assert len(found) > 500 and set(found["model_version"]) == {1} and set(found["promoted"]) == {promoted}
    assert load_scores("2024-Q2", lake_root=root / "lake").empty

    gained = materialisations(later, MODEL_KEY)[to_key("2025-Q1")]
    assert gained["promoted"] and gained["model_version"] == 4 and gained["gate/previous_champion_version"] == 1


def test_an_untrainable_quarter_keeps_the_champion_before_it_and_scores_with_it(relaid_rerun, spark, tmp_path):
    """2025-Q1 again, in a copy of the store and lake, its training set now one class only: nothing is
    registered, the champion of 2024-Q4 (version 1, registered in 2024-Q3) becomes the champion of
    2025-Q1, which the latest quarter's `champion` follows, and it scores 2025-Q1, not promoted there."""
    shared, _, (_, _, before), _ = relaid_rerun
    assert before["champion-2025-Q1"] == 4 and before["champion-2024-Q4"] == 1
    root = Path(shutil.copytree(shared, tmp_path / "relaid"))
    versions = registry_versions(root)
    training = spark.read.format("delta").load(str(root / "lake" / "gold" / "training_set"))
    one_class = training.filter(F.col("quarter") == "2025-Q1").withColumn("label", F.lit(0)).toPandas()
    commit_quarters(
        spark.createDataFrame(one_class, schema=training.schema), root / "lake", "gold/training_set", ["2025-Q1"]
    )
    result = run_ml(ml_config(root), "2025-Q1", "2025-Q1", selection=[MODEL_KEY, SCORES_KEY])
    assert result.success
    model = materialisations(result, MODEL_KEY)[to_key("2025-Q1")]
    assert model["trained"] is False and model["model_version"] == 1 and model["promoted"] is False
    assert model["reason"].startswith("not trained, nothing registered (version 1 stays the champion): ")
    assert [v.version for v in registry_versions(root)] == [v.version for v in versions]
    aliases = store_client(root).get_registered_model(MODEL_NAME).aliases
    assert aliases == {**before, "champion-2025-Q1": 1, "champion": 1}
    (gate,) = [e for e in result.get_asset_check_evaluations() if e.check_name == PROMOTION_GATE]
    assert gate.passed and "not trained" in gate.description
    recorded = materialisations(result, SCORES_KEY)[to_key("2025-Q1")]
    assert recorded["model_version"] == 1 and recorded["promoted"] is False
    scores = load_scores("2025-Q1", lake_root=root / "lake")
    assert len(scores) > 500 and set(scores["model_version"]) == {1} and set(scores["promoted"]) == {False}


def test_the_gate_check_records_each_quarters_verdict_against_its_partition(relaid_rerun):
    _, (first, _, later), _, _ = relaid_rerun
    found = {e.partition: e for e in first.get_asset_check_evaluations() if e.check_name == PROMOTION_GATE}
    assert sorted(found) == [to_key(q) for q in ("2024-Q2", "2024-Q3", "2024-Q4")]
    assert all(e.severity == dg.AssetCheckSeverity.WARN and e.target_materialization_data for e in found.values())
    untrained, won, lost = (found[to_key(q)] for q in ("2024-Q2", "2024-Q3", "2024-Q4"))
    assert untrained.passed and "not trained" in untrained.description
    assert won.passed and won.metadata["gate/promoted"].value is True
    assert not lost.passed and lost.description.startswith("2024-Q4: not promoted: version 1 stays")
    metadata = {k: v.value for k, v in lost.metadata.items()}
    assert metadata["gate/beats_baseline"] is False and metadata["gate/baseline_auc_pr"] == 1.0
    assert metadata["gate/best_auc_pr"] < 1.0 and metadata["gate/previous_champion_threshold"] > 0
    (gained,) = [e for e in later.get_asset_check_evaluations() if e.check_name == PROMOTION_GATE]
    assert gained.partition == to_key("2025-Q1") and gained.passed


def test_every_registered_version_carries_a_model_card_naming_its_data_window(relaid_rerun):
    """The card is the version's description (the MLflow UI shows it on the version's page) and the
    artifact `model_card.md` of the run that logged the model. L = 2, W = 90 days."""
    root, _, _, (trained, _, _) = relaid_rerun
    client = store_client(root)
    first, lost = (client.get_model_version(MODEL_NAME, v) for v in ("1", "2"))
    card = first.description
    # The calibration plot's points, of the eval rows of the registered candidate
    best = trained[trained["model_version"] == 1].iloc[0]
    assert f"## Calibration of {best['candidate']} on eval" in card
    points = [[float(cell) for cell in line.strip("| ").split(" | ")] for line in _section(card, "## Calibration")]
    assert 0 < len(points) <= 10 and sum(rows for rows, _, _ in points) == best["eval_rows"]
    churned = sum(rows * observed for rows, _, observed in points) / best["eval_rows"]
    assert churned == pytest.approx(best["churn_rate"], abs=0.001)
    assert [predicted for _, predicted, _ in points] == sorted(predicted for _, predicted, _ in points)
    assert card.startswith("# Churn model, version 1: ") and "trained for 2024-Q3" in card.splitlines()[0]
    assert "Features at cutoff C = 2024-07-01: events of silver 2024-Q1 … 2024-Q2 ([2024-01-01, 2024-07-01))" in card
    assert "no operational event in [2024-07-01, 2024-09-29)" in card
    assert "gold/training_set 2024-Q3 (Delta table" in card and "2024-Q3: promoted;" in card
    assert "| recency_baseline | " in card and "None: the first version" in card
    assert f"- Train: {best['train_rows']} rows, churn rate 0." in card
    assert f"; eval: {best['eval_rows']} rows, churn rate {best['churn_rate']:.3f}" in card
    assert "`recency_days`" in _section_text(card, "## Features") and "\n## Known limitations\n- " in card
    (root / "card").mkdir()
    assert client.download_artifacts(first.run_id, "model_card.md", str(root / "card")).endswith("model_card.md")
    assert (root / "card" / "model_card.md").read_text() == card
    assert "2024-Q4: not promoted: version 1 stays the champion" in lost.description
    assert "| previous_champion (v1) | " in lost.description and "| 1 | 2024-Q3 | " in lost.description
    # Version 1, re-scored as the previous champion of 2024-Q4 and 2025-Q1: its out-of-time figures.
    rescored = float(first.tags["rescored_auc_pr_2024-Q4"])
    assert set(first.tags) >= {"rescored_auc_pr_2024-Q4", "rescored_auc_pr_2025-Q1"}
    assert f"2024-Q4: {rescored:.4f} |" in lost.description
    assert "Features at cutoff C = 2024-10-01: events of silver 2024-Q2 … 2024-Q3" in lost.description


def _section_text(card: str, heading: str) -> str:
    """The card's section that starts with `heading`."""
    return card[card.index(heading) :].split("\n## ")[0]


def _section(card: str, heading: str) -> list[str]:
    """The table rows of the card's section that starts with `heading`, below its header."""
    lines = _section_text(card, heading).splitlines()
    return [line for line in lines if line.startswith("| ") and not line.startswith("| ---")][1:]


def test_a_model_card_fits_mlflows_description_leaving_out_the_oldest_versions_before_it():
    """MLflow's SQL stores keep a version's description in 5,000 characters (PostgreSQL refuses more):
    the versions before a card are listed newest first as far as they fit, the others counted."""
    from batch_platform.ml import bootstrap
    from batch_platform.ml.gate import Gate
    from batch_platform.ml.metrics import measure
    from batch_platform.ml.model_card import DESCRIPTION_CHARS, model_card
    from batch_platform.ml.training import QuarterModel, card_row
    from batch_platform.partitions import quarter_range

    rng = np.random.default_rng(0)
    labels = (rng.random(300) < 0.3).astype(int)
    outcome = QuarterModel("2031-Q4", 1200, 300, train_churned=360, labels=labels, pooled=("2031-Q4",))
    outcome.best, outcome.best_version = NAMES[0], 63
    for name in [*NAMES, "recency_baseline"]:
        outcome.probabilities[name] = np.clip(rng.random(300) * 0.6 + labels * 0.3, 0, 1)
        outcome.rows.append(card_row(name, measure(labels, outcome.probabilities[name]), outcome, f"run {name}"))
    outcome.rows[0]["model_version"] = 63
    outcome.chosen = {candidate.name: dict(candidate.grid[-1]) for candidate in CANDIDATES}
    outcome.gate = Gate("2031-Q4", outcome.rows[0]["auc_pr"], outcome.rows[-1]["auc_pr"], 0.01, 0.7, 62, "2031-Q3")
    outcome.difference = bootstrap.difference(
        labels, outcome.probabilities[NAMES[0]], outcome.probabilities["recency_baseline"]
    )
    quarters = quarter_range("2024-Q1", "2031-Q3")
    earlier = [  # each quarter trained twice, each version re-scored on the eight quarters after it
        {
            "version": str(2 * i + again + 1),
            "quarter": quarter,
            "candidate": "random_forest",
            "eval_auc_pr": "0.812345",
            "baseline_auc_pr": "0.801234",
            **{f"rescored_auc_pr_{later}": "0.799912" for later in quarters[i + 1 : i + 9]},
        }
        for i, quarter in enumerate(quarters)
        for again in (0, 1)
    ]
    few = model_card(outcome, 4, earlier[-3:])
    assert [row.split(" | ")[0] for row in _section(few, "## Versions before it")] == ["| 60", "| 61", "| 62"]
    assert "left out" not in few
    card = model_card(outcome, 4, earlier)
    assert DESCRIPTION_CHARS - 300 < len(card) <= DESCRIPTION_CHARS
    listed = [int(row.split(" | ")[0].strip("| ")) for row in _section(card, "## Versions before it")]
    assert 3 < len(listed) < 62 and listed == list(range(63 - len(listed), 63))
    assert f"The {62 - len(listed)} older version(s) are left out" in card
    assert card.endswith(few[few.index("## Known limitations") :]) and "## Calibration of" in card


def test_the_same_training_rows_in_other_files_give_every_candidate_the_same_metrics(relaid_rerun):
    """MLlib's random forest (seed 42) and the optimizers follow the order and partitioning of their
    input: read from other files, the same rows must still give the same models."""
    _, _, _, (card, rerun_card, _) = relaid_rerun
    assert list(card["candidate"]) == sorted([*NAMES, "recency_baseline"])
    assert set(card["mlflow_run_id"]).isdisjoint(rerun_card["mlflow_run_id"])
    columns = ["candidate", "champion", *METRICS, *INTERVALS, "train_rows", "eval_rows"]
    pd.testing.assert_frame_equal(card[columns], rerun_card[columns], check_exact=True)


# ------------------------------------------------------------------------------ the rules
def test_untrainable_reasons_name_the_rule_and_the_counts():
    assert untrainable_reason({"train_rows": 10, "eval_rows": 30, "train_churned": 5, "eval_churned": 3}).startswith(
        "10 train rows"
    )
    assert "eval rows" in untrainable_reason(
        {"train_rows": 100, "eval_rows": 5, "train_churned": 50, "eval_churned": 2}
    )
    assert "100 churned and 0 retained" in untrainable_reason(
        {"train_rows": 100, "eval_rows": 30, "train_churned": 100, "eval_churned": 3}
    )
    assert "one class only (0 churned of 30)" in untrainable_reason(
        {"train_rows": 100, "eval_rows": 30, "train_churned": 50, "eval_churned": 0}
    )
    assert untrainable_reason({"train_rows": 100, "eval_rows": 30, "train_churned": 50, "eval_churned": 3}) is None


def test_pooling_reads_the_train_rows_of_the_last_k_training_sets_that_exist():
    found = {"2024-Q2": {"train_rows": 40, "train_churned": 10}, "2024-Q3": {"train_rows": 60, "train_churned": 20}}
    found["2024-Q3"] |= {"eval_rows": 25, "eval_churned": 5}
    assert pooled_quarters("2024-Q3", 1) == ("2024-Q3",)
    assert pooled_quarters("2024-Q3", 3) == ("2024-Q1", "2024-Q2", "2024-Q3")
    assert pooled_quarters("2024-Q3", 3, found) == ("2024-Q2", "2024-Q3")  # 2024-Q1 has no rows
    counts = pooled_counts(found, "2024-Q3", ("2024-Q2", "2024-Q3"))
    assert counts == {"train_rows": 100, "train_churned": 30, "eval_rows": 25, "eval_churned": 5}


def test_the_graph_maps_the_model_of_q_to_the_training_sets_it_pools():
    from batch_platform.definitions import build_definitions
    from batch_platform.partitions import quarterly_partitions

    for pool, expected in ((1, ["2024-07-01"]), (3, ["2024-01-01", "2024-04-01", "2024-07-01"])):
        config = parse_config({"ml": {"train_quarters": pool}}, "test")
        quarters = quarterly_partitions(config.batch.first_quarter)
        graph = build_definitions(config).resolve_asset_graph()
        mapping = graph.get_partition_mapping(MODEL_KEY, dg.AssetKey(["gold", "training_set"]))
        upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
            quarters.subset_with_partition_keys(["2024-07-01"]), quarters, quarters
        )
        assert sorted(upstream.partitions_subset.get_partition_keys()) == expected, pool
    # The first quarter pools what exists: nothing before it.
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        quarters.subset_with_partition_keys(["2024-01-01"]), quarters, quarters
    )
    assert sorted(upstream.partitions_subset.get_partition_keys()) == ["2024-01-01"]


def test_the_validation_fold_is_a_quarter_of_the_train_customers_each_on_one_side(spark):
    from batch_platform.ml.tuning import ValidationFolds

    train = training_rows(spark, 400, quarters=("2024-Q2", "2024-Q3"))
    folds = ValidationFolds.of(train)
    try:
        fit, fold = (f.select("customer_id", "quarter").toPandas() for f in (folds.fit, folds.fold))
        assert folds.ranks and len(fit) + len(fold) == train.count()
        assert set(fit["customer_id"]).isdisjoint(fold["customer_id"])  # both quarters of a customer on one side
        assert (fold.groupby("customer_id").size() == 2).all()
        assert 0.2 < fold["customer_id"].nunique() / 400 < 0.3
        again = ValidationFolds.of(train.orderBy(F.rand(3)).repartition(3))
        assert sorted(again.fold.select("customer_id").toPandas()["customer_id"]) == sorted(fold["customer_id"])
        again.release()
    finally:
        folds.release()


def test_the_grid_chooses_the_combination_that_ranks_the_validation_fold_best_ties_to_the_first(spark):
    """An L1 penalty of 1000 zeroes every coefficient (a constant probability: AUC-PR = the churn rate); no
    penalty ranks the fold perfectly (the label is recency > 150). The choice sees the train rows only:
    `choose_params` takes no eval rows."""
    from batch_platform.ml.candidates import Candidate
    from batch_platform.ml.tuning import ValidationFolds, choose_params

    folds = ValidationFolds.of(training_rows(spark, 300))
    try:
        strong, none = {"regParam": 1000.0, "elasticNetParam": 1.0}, {"regParam": 0.0, "elasticNetParam": 0.0}
        lasso = Candidate("lr", "LogisticRegression", {"maxIter": 10}, (strong, none))
        chosen, scores = choose_params(lasso, folds)
        assert chosen == {"maxIter": 10, **none} and scores[1] > 0.95 and scores[0] < 0.7, scores
        twice = Candidate("lr", "LogisticRegression", {"maxIter": 10}, (none, none))
        assert choose_params(twice, folds) == ({"maxIter": 10, **none}, [scores[1]] * 2)
        single = Candidate("lr", "LogisticRegression", {"maxIter": 10})
        assert choose_params(single, folds) == ({"maxIter": 10}, [])  # nothing to choose: no fit on the fold
    finally:
        folds.release()
    with pytest.raises(ValueError, match="a grid of 1 to 4"):
        Candidate("lr", "LogisticRegression", {}, tuple({"regParam": r} for r in range(5)))


def test_the_skewed_counts_and_amounts_reach_the_classifier_as_signed_log1p(spark):
    """Every fitted candidate's feature vector holds sign(x)·ln(1 + |x|) of each skewed feature (a negative
    amount, a refund, included), never the raw value."""
    from pyspark.ml.functions import vector_to_array

    from batch_platform.ml.pipelines import MODEL_INPUTS, PLAIN, SKEWED, estimator, pipeline

    rows = training_rows(spark, 60).withColumn(
        "total_amount", F.when(F.col("customer_id") == "C0001", F.lit(-250.0)).otherwise(F.col("total_amount"))
    )
    assert MODEL_INPUTS[: len(PLAIN) + len(SKEWED)] == [*PLAIN, *(f"{name}_log" for name in SKEWED)]
    for candidate in CANDIDATES:
        model = pipeline(estimator(candidate, candidate.combinations()[0])).fit(rows)
        found = model.transform(rows).select(*SKEWED, vector_to_array("features").alias("vector")).toPandas()
        vectors = np.stack(found["vector"].to_numpy())
        for i, name in enumerate(SKEWED, start=len(PLAIN)):
            raw = found[name].astype(float).to_numpy()
            np.testing.assert_allclose(vectors[:, i], np.sign(raw) * np.log1p(np.abs(raw)), err_msg=name)
        assert (found["total_amount"] < 0).sum() == 1


def test_metrics_by_hand():
    labels = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    probabilities = np.array([0.9, 0.4, 0.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1])
    found = evaluate(labels, probabilities)
    assert found["churn_rate"] == 0.2
    assert found["auc_pr"] == pytest.approx((1 + 2 / 3) / 2)
    assert found["auc_roc"] == pytest.approx(15 / 16)
    assert found["lift_top_decile"] == pytest.approx(1 / 0.2)
    assert found["brier"] == pytest.approx(np.mean((probabilities - labels) ** 2))
    expected = -np.mean(labels * np.log(probabilities) + (1 - labels) * np.log(1 - probabilities))
    assert found["log_loss"] == pytest.approx(expected)
    assert math.isfinite(found["log_loss"])


def test_the_mlflow_store_defaults_to_a_local_store_beside_the_lake_and_the_config_can_point_at_a_server(tmp_path):
    from batch_platform.config import ConfigError

    local = ml_config(tmp_path)
    assert local.mlflow_tracking_uri == f"sqlite:///{tmp_path}/mlflow.db"
    assert local.mlflow_artifact_location == str(tmp_path / "mlartifacts")
    server = make_config(tmp_path, mlflow={"tracking_uri": "http://127.0.0.1:5001"})
    assert server.mlflow_tracking_uri == "http://127.0.0.1:5001" and server.mlflow_artifact_location is None
    assert server.mlflow.registered_model_name == "batch_platform_churn"
    from batch_platform.mlflow_store import build_mlflow_store

    # A password is refused at load (test_config); a user name is left out of the run links.
    named = make_config(tmp_path, mlflow={"tracking_uri": "https://bot@mlflow.example:8443/"})
    assert build_mlflow_store(named).run_url("1", "abc") == "https://mlflow.example:8443/#/experiments/1/runs/abc"
    assert build_mlflow_store(named).ui_hint().endswith("its UI at https://mlflow.example:8443")
    hint = build_mlflow_store(local).ui_hint()
    assert hint.startswith(f"MLflow store sqlite:///{tmp_path}/mlflow.db, not a server")
    assert hint.endswith("serve its UI at http://127.0.0.1:5000 with `batch-platform mlflow-ui` (or `make mlflow-ui`)")
    assert build_mlflow_store(local).run_url("1", "abc") == "http://127.0.0.1:5000/#/experiments/1/runs/abc"
    with pytest.raises(ConfigError, match="unknown key 'mlflow.tracking_url'"):
        parse_config({"mlflow": {"tracking_url": "http://x"}}, "test")


# ----------------------------------------------------------------------- batch-platform ml-report
def test_ml_report_shows_model_and_baseline_out_of_time_from_the_lake_as_the_check_recorded(
    ml_lake, tmp_path, monkeypatch, capsys
):
    """Without DAGSTER_HOME (and with an empty one) `ml-report` computes the out-of-time figures from
    the lake by the check's own function: the model's and the baseline's AUC-PR equal what the check
    recorded, `pending` where the labels of Q+1 are missing, `no scores` for a quarter never scored."""
    import yaml

    from batch_platform.cli import main
    from batch_platform.consume import load_model_card

    root, _, result = ml_lake
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "storage": {"landing_root": str(root / "landing"), "lake_root": str(root / "lake")},
                "batch": {"lookback_quarters": L},
                "mlflow": {"registered_model_name": MODEL_NAME},
            }
        )
    )
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(config))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    assert main(["ml-report", "--from", "2024-Q2", "--to", RUN[-1]]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line[:4].isdigit() and line[7:8] == " "}
    assert list(rows) == ["2024-Q2", *RUN]

    assert rows["2024-Q2"][:2] == ["2024-Q2", "(not"] and rows["2024-Q2"][-2:] == ["no", "scores"]
    checked = {e.partition: e for e in result.get_asset_check_evaluations() if e.check_name == OUT_OF_TIME}
    for quarter in RUN[:2]:
        recorded = {k: v.value for k, v in checked[to_key(quarter)].metadata.items()}
        card = load_model_card(quarter, lake_root=root / "lake")
        assert str(card["model_version"].dtype) == "Int64"
        assert card.loc[card["candidate"] == "recency_baseline", "model_version"].isna().all()
        champion = card[card["champion"]].iloc[0]
        baseline = card.loc[card["candidate"] == "recency_baseline", "auc_pr"].iloc[0]
        assert rows[quarter] == [
            quarter,
            champion["candidate"],
            str(champion["model_version"]),
            f"{champion['auc_pr']:.4f}",
            f"{baseline:.4f}",
            f"{recorded['out_of_time/auc_pr']:.4f}",
            f"{recorded['baseline/auc_pr']:.4f}",
            "ok" if checked[to_key(quarter)].passed else "WARN",
        ]
    assert rows[RUN[-1]][-3:] == ["-", "-", "pending"] and checked[to_key(RUN[-1])].description.startswith("pending")

    home = tmp_path / "dagster_home"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    assert main(["ml-report", "--from", "2024-Q2", "--to", RUN[-1]]) == 0
    assert capsys.readouterr().out == out


# ------------------------------------------------------------------------------- pinned to its data
def test_the_rows_a_model_learned_from_come_back_byte_for_byte_after_its_quarter_was_rebuilt(
    ml_lake, spark, tmp_path, monkeypatch
):
    """Train Q, change silver Q, re-materialise gold/training_set Q: the model's pinned Delta version
    still reads exactly the rows it was fit on (SPEC.md, "Lake" and "ML")."""
    import time

    import batch_platform.ml.training as ml_assets
    from batch_platform.consume import load_training_set
    from batch_platform.ml.training_input import load_training_set_of_model
    from batch_platform_tests.gold_fixtures import materialize_gold, write_silver

    shared, _, _ = ml_lake
    root = Path(shutil.copytree(shared, tmp_path / "ml"))
    config, quarter = ml_config(root), RUN[-1]
    seen = {}
    train_quarters = ml_assets.train_quarters

    def spy(training_set, quarters, *args):
        rows = training_set.filter(F.col("quarter") == quarter)
        seen["rows"] = rows.toArrow().to_pandas()
        return train_quarters(training_set, quarters, *args)

    monkeypatch.setattr(ml_assets, "train_quarters", spy)
    started = time.time() * 1000
    result = run_ml(config, quarter, quarter, selection=[MODEL_KEY])
    assert result.success
    version = materialisations(result, MODEL_KEY)[to_key(quarter)]["best_model_version"]
    training = delta.open_table(str(root / "lake" / "gold" / "training_set"))
    registered = store_client(root).get_model_version(MODEL_NAME, str(version))
    assert registered.tags["training_set_version"] == str(training.version)
    assert registered.tags["training_set"] == str(root / "lake" / "gold" / "training_set")

    # Q's operational events change (as a late landing file would change them), and gold Q is rebuilt.
    events = [row for row in planted_silver(seed=12)["operational_events"] if row[-1] == quarter]
    write_silver(spark, str(root / "lake"), {**planted_silver(), "operational_events": events}, [quarter])
    assert materialize_gold(config, quarter, assets=GOLD).success
    assert delta.open_table(training.uri).version > training.version

    def ordered(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.sort_values("customer_id", ignore_index=True)[sorted(frame.columns)]

    trained = ordered(seen["rows"][seen["rows"]["split"] == "train"])
    now = ordered(load_training_set(quarter, config=config))
    assert not now["label"].equals(ordered(seen["rows"])["label"])  # the quarter moved on
    for model in (version, f"models:/{MODEL_NAME}/{version}", f"runs:/{registered.run_id}/model"):
        found = ordered(load_training_set_of_model(model, config=config))
        pd.testing.assert_frame_equal(found, trained, check_exact=True)
        assert (
            pd.util.hash_pandas_object(found, index=False) == pd.util.hash_pandas_object(trained, index=False)
        ).all()
    everything = ordered(load_training_set_of_model(version, split=None, config=config))
    pd.testing.assert_frame_equal(everything, ordered(seen["rows"]), check_exact=True)

    # Every run of the quarter (the quarter's and each candidate's) logged the same training input.
    client = store_client(root)
    experiment = client.get_experiment_by_name(config.mlflow.experiment_name).experiment_id
    runs = client.search_runs([experiment], f"tags.quarter = '{quarter}'")
    inputs = {
        run.info.run_id: [
            (entry.dataset.source_type, {tag.key: tag.value for tag in entry.tags}["delta_version"])
            for entry in run.inputs.dataset_inputs
        ]
        for run in runs
    }
    assert all(len(found) == 1 for found in inputs.values())
    rerun = [inputs[run.info.run_id][0] for run in runs if run.info.start_time >= started]
    assert rerun == [("delta_table", str(training.version))] * (
        1 + len(CANDIDATES)
    )  # the quarter's and each candidate's
