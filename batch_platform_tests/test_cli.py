import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from batch_platform import delta
from batch_platform.cli import main
from batch_platform.partitions import label_of, last_complete_quarter, parse_quarter, quarter_range, shift, to_key
from batch_platform.sample_data import generate_landing
from batch_platform_tests.delta_fixtures import write_quarters
from batch_platform_tests.lake_fixtures import lake_quarter
from batch_platform_tests.platform import TEST_SPARK, dagster_env

ROOT = Path(__file__).resolve().parents[1]


def cli_env(tmp_path: Path) -> dict[str, str]:
    """A config file and a Dagster home of the test's own, for a `dagster` child process."""
    storage = {"landing_root": str(tmp_path / "landing"), "lake_root": str(tmp_path / "lake")}
    return dagster_env(tmp_path, {"storage": storage, "spark": dict(TEST_SPARK)})


def test_dagster_asset_materialize_writes_one_quarter(tmp_path):
    manifest = generate_landing(
        tmp_path / "landing", first_quarter="2024-Q1", last_quarter="2024-Q2", customers=40, seed=3
    )
    dagster = str(Path(sys.executable).parent / "dagster")
    out = subprocess.run(
        [
            dagster,
            "asset",
            "materialize",
            "-m",
            "batch_platform.definitions",
            "--select",
            "bronze/operational",
            "--partition",
            "2024-04-01",
        ],
        cwd=ROOT,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    written = lake_quarter(tmp_path / "lake", "bronze/operational", "2024-Q2")
    assert len(written) == manifest["rows_by_source_quarter"]["operational"]["2024-Q2"] > 0
    assert set(written["_batch_id"]) == {"2024-Q2"}
    table = delta.open_table(str(tmp_path / "lake" / "bronze" / "operational"))
    assert delta.materialised_quarters(table) == ["2024-Q2"]


def _complete_quarters(first: str) -> list[str]:
    """`first` … the last quarter that has ended, as `batch-platform quarters` lists them today."""
    last = shift(label_of(datetime.now(UTC)), -1)
    if parse_quarter(last) < parse_quarter(first):
        return []
    return [f"{q}  {to_key(q)}" for q in quarter_range(first, last)]


def test_quarters_lists_labels_with_their_keys(capsys):
    before = _complete_quarters("2024-Q1")
    assert main(["quarters"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines in (before, _complete_quarters("2024-Q1"))  # a quarter may end during the call
    assert lines[:4] == ["2024-Q1  2024-01-01", "2024-Q2  2024-04-01", "2024-Q3  2024-07-01", "2024-Q4  2024-10-01"]


@pytest.mark.parametrize("bad", ["2024-Q5", "2024-02-01", "Q1"])
def test_a_mistyped_quarter_is_refused_by_name(bad, capsys):
    with pytest.raises(SystemExit):
        main(["report", "--from", bad])
    assert f"'{bad}' is not a quarter" in capsys.readouterr().err


PROBE = """
import sys
from batch_platform import delta
from batch_platform.cli import main
code = main(sys.argv[1:])
print("exit", code, "loaded", sorted(m for m in ("dagster", "pyspark", "batch_platform.definitions") if m in sys.modules))
"""


def _refusals() -> list[tuple[list[str], str]]:
    last = last_complete_quarter()
    running = shift(last, 1)
    beyond = f"quarters run from 2024-Q1 to {last}"
    backwards = "--to 2025-Q1 comes before --from 2025-Q3: a range runs forwards, --from 2025-Q1 --to 2025-Q3"
    return [
        (["materialize", "--from", running], f"materialize: {running} is not a partition: {beyond}"),
        (["materialize", "--from", "2027-Q1", "--to", "2027-Q2"], f"materialize: 2027-Q1 is not a partition: {beyond}"),
        (["materialize", "--from", "2023-Q4", "--to", "2024-Q2"], f"materialize: 2023-Q4 is not a partition: {beyond}"),
        (["materialize", "--from", "2025-Q3", "--to", "2025-Q1"], f"materialize: {backwards}"),
        (["report", "--from", "2025-Q3", "--to", "2025-Q1"], f"report: {backwards}"),
        (["report", "--from", "2025-Q1", "--to", running], f"report: {running} is not a partition: {beyond}"),
        (["ml-report", "--from", "2023-Q1"], f"ml-report: 2023-Q1 is not a partition: {beyond}"),
        (["ml-report", "--from", "2025-Q3", "--to", "2025-Q1"], f"ml-report: {backwards}"),
        (["sample-data", "--from", "2025-Q3", "--to", "2025-Q1"], f"sample-data: {backwards}"),
        (
            ["sample-data", "--from", last, "--to", running],
            f"sample-data: {running} has not ended: sample data is dated by arrival, up to the last complete "
            f"quarter, {last}",
        ),
        (
            ["score", "--model", "models:/m@champion", "--landing", ".", "--as-of", "2024-10-15", "--output", "out"],
            "score: as-of 2024-10-15 is not the first day of a quarter: features and their lookback are defined by "
            "quarters (SPEC.md, 'Gold'), so the cutoff is one of the quarter starts, e.g. 2024-10-01 or 2025-01-01",
        ),
        (
            ["score", "--model", "runs:/0a1b/model", "--landing", ".", "--as-of", "2024-10-01", "--output", "out"],
            "score: model 'runs:/0a1b/model' is not a registered model's URI: write models:/<name>@<alias> "
            "(e.g. models:/batch_platform_churn@champion) or models:/<name>/<version>",
        ),
    ]


@pytest.mark.parametrize("argv, message", _refusals(), ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_a_quarter_outside_the_partitions_or_a_backwards_range_is_refused_in_one_line_before_any_work(
    argv, message, tmp_path
):
    """Refused before Spark, Dagster or the definitions are even imported: one line, exit code 2."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=tmp_path,
        env=cli_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[-1] == "exit 2 loaded []", done.stdout[-3000:]
    assert done.stderr.splitlines() == [f"batch-platform {message}"]
    assert not (tmp_path / "landing").exists() and not (tmp_path / "lake").exists()


def test_sample_data_takes_any_range_that_has_ended_also_before_the_first_quarter(tmp_path, monkeypatch, capsys):
    """The landing zone records arrivals: quarters before `batch.first_quarter` may arrive (bronze reads
    only the partitions); a quarter still to come may not."""
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", cli_env(tmp_path)["BATCH_PLATFORM_CONFIG"])
    running = shift(last_complete_quarter(), 1)
    assert main(["sample-data", "--from", running, "--customers", "5"]) == 2
    assert not (tmp_path / "landing").exists()
    assert main(["sample-data", "--from", "2023-Q4", "--to", "2024-Q1", "--customers", "5"]) == 0
    dates = sorted(folder.name for folder in (tmp_path / "landing" / "operational").iterdir())
    assert dates[0].startswith("2023-1") and dates[-1] < "2024-04-01"


@pytest.mark.parametrize("selection", ["group:silver_typo", "key:silver/nothing", "silver_typo", "((("])
def test_a_selection_that_matches_no_asset_is_refused_before_any_run(selection, tmp_path, monkeypatch, capsys):
    import dagster as dg

    env = cli_env(tmp_path)
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", env["BATCH_PLATFORM_CONFIG"])
    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    assert main(["materialize", "--from", "2024-Q1", "--select", "group:bronze", "--select", selection]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"batch-platform materialize: --select {selection!r} ")
    assert "matches no asset" in line or "is not an asset selection" in line
    assert "groups are bronze, silver, gold, ml (e.g. group:silver)" in line and 'key:"silver/*"' in line
    with dg.DagsterInstance.get() as instance:
        assert instance.get_runs() == []


def test_selections_are_resolved_against_the_definitions_and_unioned():
    import dagster as dg

    from batch_platform.cli_run import _selection
    from batch_platform.definitions import build_definitions
    from batch_platform_tests.platform import DEFAULTS

    defs = build_definitions(DEFAULTS)
    union = _selection(defs, ["group:gold", "key:ml/churn_model"])
    gold = {spec.key for spec in defs.resolve_all_asset_specs() if spec.group_name == "gold"}
    assert dg.AssetKey(["gold", "training_set"]) in gold
    assert union.resolve(defs.resolve_asset_graph()) == gold | {dg.AssetKey(["ml", "churn_model"])}


def test_report_lists_only_the_training_sets_in_the_lake_and_a_hint_that_reads_one(tmp_path, monkeypatch, capsys):
    env = cli_env(tmp_path)
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", env["BATCH_PLATFORM_CONFIG"])
    assert main(["report", "--from", "2024-Q1", "--to", "2024-Q3"]) == 0
    out = capsys.readouterr().out
    assert "training sets" not in out and "read one" not in out
    assert "no training set of 2024-Q1...2024-Q3 is in the lake: batch-platform materialize --from 2024-Q1" in out

    frame = pd.DataFrame({"customer_id": ["C1", "C2"], "label": [1, 0], "quarter": "2024-Q2"})
    write_quarters(tmp_path / "lake", "gold/training_set", frame)
    assert main(["report", "--from", "2024-Q1", "--to", "2024-Q3"]) == 0
    out = capsys.readouterr().out
    table = f"{tmp_path / 'lake'}/gold/training_set"
    assert f"training sets (Delta table {table}, version 0):\n  2024-Q2  2 rows\n" in out
    (hint,) = [line for line in out.splitlines() if line.startswith("read one:")]
    code = hint.split("python -c ", 1)[1].strip("'")
    assert '"2024-Q2"' in code
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "C1" in done.stdout and "2024-Q2" in done.stdout


def test_a_bad_config_file_is_reported_without_a_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(tmp_path / "missing.yaml"))
    assert main(["report", "--from", "2024-Q1"]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml does not exist" in err and "Traceback" not in err
