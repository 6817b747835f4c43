"""Each model pinned to its data (SPEC.md, "ML": the training set's Delta version is the run's input):
`ml.training_input` names the Delta version a training frame was read at, `ml.training_dataset` is
what every churn-model run logs with `mlflow.log_input`, and `ml.load_training_set_of_model` reads
those rows back. Here on a small `gold/training_set` of a few versions read by the real IO manager;
the whole loop (train, change the data, re-materialise, read back) is in test_ml."""

from __future__ import annotations

import json
from contextlib import contextmanager

import dagster as dg
import mlflow
import pandas as pd
import pytest

from batch_platform.consume import load_training_set
from batch_platform.ml.training_input import load_training_set_of_model, training_dataset, training_input
from batch_platform.mlflow_store import build_mlflow_store
from batch_platform.resources import build_resources
from batch_platform.schemas.gold import TRAINING_KEY
from batch_platform_tests.delta_fixtures import TRAINING, by_customer, commit_rows, customers, model_rows
from batch_platform_tests.platform import make_config

Q, OTHER = "2024-Q2", "2024-Q3"


@contextmanager
def lake_io(config):
    """The config's IO manager, set up as in a run (its Spark session started), for reading directly."""
    resources = build_resources(config)
    with dg.build_resources({"pyspark": resources["pyspark"], "io_manager": resources["io_manager"]}) as built:
        yield built.io_manager


def log_training_run(config, frame, quarter: str, pooled: tuple[str, ...] = ()) -> str:
    """An MLflow run that logs `frame`'s quarter (with the train rows of `pooled`) as its training input, as a
    churn-model run does."""
    from batch_platform.ml.training_input import log_training_input as _log_training_input

    pinned = training_input(frame)
    rows = frame.filter(frame.quarter == quarter)
    build_mlflow_store(config).activate()
    with mlflow.start_run() as run:
        dataset = training_dataset(rows, pinned, quarter, {"train_rows": 24, "eval_rows": 6}, pooled)
        _log_training_input(dataset, quarter, pinned, pooled)
    return run.info.run_id


def test_a_run_logs_the_version_it_read_and_its_rows_come_back_after_the_quarter_changed(spark, tmp_path):
    config = make_config(tmp_path)
    uri = f"{config.lake_root}/{TRAINING}"
    first = model_rows(TRAINING, Q, customers(30), 1)
    with lake_io(config) as lake:
        commit_rows(spark, config.lake_root, TRAINING, {Q: first}, "run-a")  # version 0
        at_0 = lake.read_quarters(TRAINING_KEY, [Q])
        other = {OTHER: model_rows(TRAINING, OTHER, customers(5), 1)}
        commit_rows(spark, config.lake_root, TRAINING, other, "run-b")
        at_1 = lake.read_quarters(TRAINING_KEY, [Q])  # version 1: Q untouched since 0
        again = {Q: model_rows(TRAINING, Q, customers(32, 100), 2)}
        commit_rows(spark, config.lake_root, TRAINING, again, "run-c")
        now = lake.read_quarters(TRAINING_KEY, [Q])
        both = lake.read_quarters(TRAINING_KEY, [Q, OTHER])

    pinned_0, pinned_1 = training_input(at_0), training_input(at_1)
    assert (pinned_0.uri, pinned_0.version) == (uri, 1)  # read at 0, whose files of Q version 1 kept: same rows
    assert (pinned_1.uri, pinned_1.version) == (uri, 1)  # Q replaced by version 2: not that one
    assert training_input(now).version == 2
    assert training_input(spark.createDataFrame(by_customer(pd.DataFrame(first)))) is None  # not read from a table

    run_id = log_training_run(config, at_1, Q)
    inputs = mlflow.MlflowClient().get_run(run_id).inputs.dataset_inputs
    assert len(inputs) == 1
    dataset, tags = inputs[0].dataset, {tag.key: tag.value for tag in inputs[0].tags}
    assert dataset.source_type == "delta_table" and json.loads(dataset.source) == {
        "path": uri,
        "delta_table_version": 1,
    }
    assert tags == {
        "mlflow.data.context": "training",
        "quarter": Q,
        "train_quarters": Q,
        "table": TRAINING,
        "delta_version": "1",
    }
    assert dataset.name == f"{TRAINING} {Q}" and json.loads(dataset.profile)["num_rows"] == 30
    assert '"name": "label"' in dataset.schema and dataset.digest == pinned_1.digest(Q)

    trained = load_training_set_of_model(f"runs:/{run_id}/model", split=None, config=config)
    pd.testing.assert_frame_equal(by_customer(trained), by_customer(load_training_set(Q, version=1, config=config)))
    assert sorted(trained["customer_id"]) == sorted(row["customer_id"] for row in first)
    assert sorted(load_training_set(Q, config=config)["customer_id"]) == customers(32, 100)  # the quarter moved on
    train = load_training_set_of_model(f"runs:/{run_id}/model", config=config)
    assert set(train["split"]) == {"train"} and len(train) == (trained["split"] == "train").sum()

    # A model of OTHER trained on the pooled train rows of Q and OTHER (ml.train_quarters = 2): those, and
    # OTHER's eval rows, come back.
    pooled_run = log_training_run(config, both, OTHER, (Q, OTHER))
    tags = {tag.key: tag.value for tag in mlflow.MlflowClient().get_run(pooled_run).inputs.dataset_inputs[0].tags}
    assert tags["train_quarters"] == f"{Q},{OTHER}" and tags["quarter"] == OTHER
    learned = load_training_set_of_model(f"runs:/{pooled_run}/model", split=None, config=config)
    everything = pd.concat([load_training_set(q, version=2, config=config) for q in (Q, OTHER)])
    expected = everything[(everything["split"] == "train") | (everything["quarter"] == OTHER)]
    pd.testing.assert_frame_equal(by_customer(learned), by_customer(expected.reset_index(drop=True)))
    assert set(learned[learned["split"] == "eval"]["quarter"]) <= {OTHER}


def test_version_zero_is_written_into_the_source_and_a_run_without_input_is_named(spark, tmp_path):
    config = make_config(tmp_path)
    commit_rows(spark, config.lake_root, TRAINING, {Q: model_rows(TRAINING, Q, customers(30), 1)}, "run-a")
    with lake_io(config) as lake:
        frame = lake.read_quarters(TRAINING_KEY, [Q])
    run_id = log_training_run(config, frame, Q)
    (entry,) = mlflow.MlflowClient().get_run(run_id).inputs.dataset_inputs
    # MLflow's own Delta source drops a version 0 from its JSON, which would read as "the latest".
    assert json.loads(entry.dataset.source)["delta_table_version"] == 0
    assert len(load_training_set_of_model(f"runs:/{run_id}/model", split=None, config=config)) == 30

    with mlflow.start_run() as bare:
        pass
    with pytest.raises(LookupError, match=f"run {bare.info.run_id} logged no {TRAINING} input"):
        load_training_set_of_model(f"runs:/{bare.info.run_id}/model", config=config)
