import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from batch_platform.cli import main
from batch_platform.partitions import label_of, parse_quarter, quarter_range, shift, to_key
from batch_platform.sample_data import generate_landing
from batch_platform_tests.conftest import TEST_SPARK, dagster_env

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
    written = pd.read_parquet(tmp_path / "lake" / "bronze" / "operational" / "quarter=2024-Q2")
    assert len(written) == manifest["rows_by_source_quarter"]["operational"]["2024-Q2"] > 0
    assert set(written["_batch_id"]) == {"2024-Q2"}
    assert not (tmp_path / "lake" / "bronze" / "operational" / "quarter=2024-Q1").exists()


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
