"""The promotion gate's rule, the bootstrap intervals and the `champion` alias, on a handful of numbers
and a local MLflow registry (no Spark: the runs that decide real quarters are in test_ml.py)."""

import mlflow
import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, roc_auc_score

from batch_platform.config import ConfigError, parse_config
from batch_platform.ml import bootstrap, registry
from batch_platform.ml.gate import Gate, gate_result
from batch_platform.ml.plots import calibration_bins
from batch_platform.mlflow_store import MlflowStore


def _eval_rows(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.3).astype(int)
    return labels, np.round(rng.random(n) * 0.6 + labels * 0.3, 2)  # rounded: ties, as a forest gives


def test_the_bootstrap_interval_is_reproducible_for_a_seed_and_holds_the_point_estimate():
    labels, scores = _eval_rows()
    found = bootstrap.intervals(labels, scores)
    assert found == bootstrap.intervals(labels, scores, seed=bootstrap.SEED)
    assert found != bootstrap.intervals(labels, scores, seed=7)
    assert bootstrap.RESAMPLES == 1000 and bootstrap.SEED == 42
    point = {"auc_pr": average_precision_score(labels, scores), "auc_roc": roc_auc_score(labels, scores)}
    for name, value in point.items():
        assert found[f"{name}_ci_low"] < value < found[f"{name}_ci_high"]
        assert found[f"{name}_ci_high"] - found[f"{name}_ci_low"] < 0.2  # a few hundred rows: a few points wide
    assert bootstrap.point(labels, scores) == pytest.approx(point, abs=1e-12)


def test_each_resample_is_scikit_learns_figure_with_its_counts_as_weights_and_keeps_the_churn_rate():
    labels, scores = _eval_rows(n=120, seed=3)
    (counts,) = bootstrap.resample_counts(labels, resamples=5, seed=1)
    replicated = bootstrap.replicates(labels, scores, resamples=5, seed=1)
    for i, weights in enumerate(counts):
        assert weights[labels == 1].sum() == labels.sum() and weights.sum() == len(labels)  # stratified
        assert replicated["auc_pr"][i] == pytest.approx(average_precision_score(labels, scores, sample_weight=weights))
        assert replicated["auc_roc"][i] == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights))


def test_a_block_measured_in_passes_gives_the_figures_of_the_whole_block(monkeypatch):
    labels, scores = _eval_rows(n=300, seed=5)
    whole = bootstrap.replicates(labels, scores, resamples=200)
    monkeypatch.setattr(bootstrap, "_CELLS_PER_PASS", 7 * len(labels))  # 29 passes, the last one short
    in_passes = bootstrap.replicates(labels, scores, resamples=200)
    for name in whole:
        assert len(in_passes[name]) == 200
        np.testing.assert_array_equal(in_passes[name], whole[name])


def test_the_difference_interval_is_paired():
    labels, scores = _eval_rows()
    same = bootstrap.difference(labels, scores, scores)
    assert set(same.values()) == {0.0}  # the same resamples for both: a model minus itself is exactly 0
    better = bootstrap.difference(labels, scores, np.where(labels == 1, scores - 0.2, scores))
    assert 0 < better["auc_pr_ci_low"] < better["auc_pr"] < better["auc_pr_ci_high"]


def test_the_gate_needs_the_baseline_and_the_previous_champion_minus_the_tolerance():
    first = Gate("2024-Q3", 0.80, 0.78, 0.01)
    assert first.promoted and "no champion before it" in first.describe()
    assert not Gate("2024-Q3", 0.77, 0.78, 0.01).promoted  # the baseline has no tolerance
    assert "no champion" in Gate("2024-Q3", 0.77, 0.78, 0.01).describe()
    within = Gate("2024-Q4", 0.80, 0.78, 0.01, previous_auc_pr=0.805, previous_version=3, previous_quarter="2024-Q2")
    assert within.promoted and within.previous_threshold == pytest.approx(0.795)
    worse = Gate("2024-Q4", 0.80, 0.78, 0.01, previous_auc_pr=0.82, previous_version=3, previous_quarter="2024-Q2")
    assert worse.beats_baseline and not worse.beats_previous and not worse.promoted
    assert worse.describe() == (
        "2024-Q4: not promoted: version 3 stays the champion; AUC-PR 0.8000 ≥ baseline 0.7800; "
        "AUC-PR 0.8000 < version 3 (registered in 2024-Q2) re-scored 0.8200 − tolerance 0.01 = 0.8100"
    )
    assert worse.figures() == {
        "promoted": False,
        "beats_baseline": True,
        "best_auc_pr": 0.80,
        "baseline_auc_pr": 0.78,
        "tolerance": 0.01,
        "beats_previous_champion": False,
        "previous_champion_auc_pr": 0.82,
        "previous_champion_threshold": pytest.approx(0.81),
        "previous_champion_version": 3,
    }
    recorded = {"trained": True, "gate": worse.describe(), **{f"gate/{k}": v for k, v in worse.figures().items()}}
    result = gate_result("2024-Q4", recorded)
    assert not result["passed"] and result["description"] == worse.describe()
    assert gate_result("2024-Q1", {"trained": False, "reason": "not trained: 0 train rows"})["passed"]


def test_the_ml_section_defaults_and_bounds():
    config = parse_config({}, "test")
    assert config.ml.promotion_tolerance == 0.01 and config.ml.train_quarters == 1
    assert parse_config({"ml": {"promotion_tolerance": 0.0}}, "test").ml.promotion_tolerance == 0.0
    with pytest.raises(ConfigError, match="promotion_tolerance"):
        parse_config({"ml": {"promotion_tolerance": -0.1}}, "test")
    assert parse_config({"ml": {"train_quarters": 3}}, "test").ml.train_quarters == 3
    for refused in (0, 9):
        with pytest.raises(ConfigError, match="train_quarters"):
            parse_config({"ml": {"train_quarters": refused}}, "test")


def test_champion_names_the_champion_of_the_latest_trained_quarter(tmp_path):
    """SPEC.md, "ML": a later untrainable quarter inherits a champion but does not hold `champion`, so
    re-running the latest trained quarter moves it, and re-running an older quarter does not."""
    store = MlflowStore(
        tracking_uri=f"sqlite:///{tmp_path}/mlflow.db", registered_model_name="churn", experiment_name="churn"
    )
    store.activate()
    client = mlflow.MlflowClient()
    client.create_registered_model("churn")

    def register(quarter: str) -> int:
        source = (tmp_path / f"model-{quarter}").as_uri()
        return int(client.create_model_version("churn", source, tags={"quarter": quarter}).version)

    def champion() -> int | None:
        return int(v) if (v := client.get_registered_model("churn").aliases.get("champion")) else None

    assert registry.name_latest(store, {}) is None and champion() is None
    v1, v2 = register("2025-Q1"), register("2025-Q2")
    champions = {"2025-Q1": v1, "2025-Q2": v2, "2025-Q3": v2}  # 2025-Q3 untrainable: Q2's champion
    assert registry.name_latest(store, champions) == v2 == champion()
    champions["2025-Q2"] = v3 = register("2025-Q2")  # Q2 re-run: a new version passes the gate
    assert registry.name_latest(store, champions) == v3 == champion()
    champions["2025-Q1"] = register("2025-Q1")  # an older quarter re-run
    assert registry.name_latest(store, champions) == v3 == champion()
    del champions["2025-Q2"], champions["2025-Q3"]  # the latest trained quarter has no champion
    assert registry.name_latest(store, champions) is None and champion() is None


@pytest.mark.parametrize("n, seed", [(300, 0), (57, 4)])
def test_the_calibration_points_are_scikit_learns_with_each_bins_rows(n, seed):
    labels, scores = _eval_rows(n, seed)  # rounded scores: ties leave some quantile bins empty
    found = calibration_bins(labels, scores)
    observed, predicted = calibration_curve(labels, scores, n_bins=10, strategy="quantile")
    np.testing.assert_allclose([p for _, p, _ in found], predicted, rtol=1e-12)
    np.testing.assert_allclose([o for _, _, o in found], observed, rtol=1e-12)
    assert sum(rows for rows, _, _ in found) == n
    assert sum(rows * o for rows, _, o in found) == pytest.approx(labels.sum())
