"""The recipes of the README and of `docs/`, run exactly as printed against a lake laid out as `make demo` leaves it.

The project folder is the one a new user has after `make demo`: `config/config.yaml`, and `data/`
with the lake and the local MLflow store; each Python block runs in a fresh interpreter from that
folder (as a user pastes it into a notebook or a script). DuckDB reads the lake's Delta tables from
Python, through `deltalake` (an SQL block could only with DuckDB's `delta` extension, downloaded at
run time). The lake is the ML tests' (`ml_fixtures.ml_lake`: silver 2024-Q1 … 2025-Q1, gold and ML
2024-Q3 … 2025-Q1, every quarter the recipes name exists in the demo too). The PostgreSQL recipes
(the blocks under a "Publishing to PostgreSQL" heading, in the README and `docs/delivery.md`) run in
`test_publish.py`, against a published lake.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from batch_platform_tests.readme import README, ROOT, doc_blocks, doc_pages

PUBLISHING = "Publishing to PostgreSQL"
READING = "Reading a training set"
"""The README's section on reading the lake; its recipes in full are `docs/reading.md`."""
READING_PAGE = "docs/reading.md"
ML = "The quarterly ML loop"
"""The README's section on the churn model; the loop in full, with its model recipe, is `docs/ml.md`."""
PYTHON_BLOCKS = [block for block in doc_blocks("python") if block.section != PUBLISHING]
SQL_BLOCKS = [block for block in doc_blocks("sql") if block.section != PUBLISHING]


def test_the_docs_have_the_recipes_this_module_runs():
    in_readme = {block.section for block in PYTHON_BLOCKS if block.file == "README.md"}
    assert {READING, ML} <= in_readme
    assert {"docs/reading.md", "docs/ml.md"} <= {block.file for block in PYTHON_BLOCKS}
    assert any("mlflow.spark.load_model" in block.code for block in PYTHON_BLOCKS if block.file == "docs/ml.md")
    reading = [block for block in PYTHON_BLOCKS if block.section == READING or block.file == READING_PAGE]
    assert any(block.file == "README.md" and "load_training_set(" in block.code for block in reading)
    for shown in ("load_training_set(", "version=", "as_of=", "history(", "DeltaTable(", ".to_pandas(filters=",
                  "to_pyarrow_dataset(filesystem=", "duckdb.sql(", 'format("delta")', "versionAsOf"):  # fmt: skip
        assert any(shown in block.code for block in reading), shown
    # Tables are read through Delta: a listing of a quarter's folder also finds the files later
    # commits replaced. (An SQL block could only read Delta with DuckDB's `delta` extension, which
    # would be downloaded at run time: DuckDB reads a deltalake pyarrow dataset from Python instead.)
    for block in PYTHON_BLOCKS:  # the reading recipes, and every other one
        assert "read_parquet" not in block.code and ".parquet(" not in block.code, block
    assert not SQL_BLOCKS


README_LINES = 350
"""Issue 24: a README a new user reads top to bottom; the depth lives under `docs/`."""
DAILY_TASKS = ("Materialising quarters", "Backfilling", READING, ML, "Scoring new data", "Watching for drift",
               "Delivering datasets", "Running on S3 and a cluster")  # fmt: skip


def test_the_readme_is_a_short_guide_whose_every_link_leads_somewhere():
    text = README.read_text()
    assert len(text.splitlines()) <= README_LINES
    headings = re.findall(r"^#{2,4} (.+)$", text, re.M)
    assert headings[:3] == ["Quick start", "Concepts", "Daily tasks"], headings
    assert [h for h in headings if h in DAILY_TASKS] == list(DAILY_TASKS)
    for page in doc_pages():
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            linked = (page.parent / target).resolve()
            if "://" in target or not linked.is_relative_to(ROOT):
                continue  # another site, or the contract beside the repository (`../shared/SPEC.md`)
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links {target}, which does not exist"


PERFORMANCE_CASES = ("M", "S", "XS", "real")
"""The cases the README's performance table shows (issue 28: its latest figures, nothing more),
each row the latest report of its case, `benchmarks/results/latest-<case>.json`."""


def performance_row(case: str) -> str:
    results = json.loads((ROOT / "benchmarks" / "results" / f"latest-{case}.json").read_text())
    ratios = results["ratios"]
    delta = ratios.get("backfill_vs_plain_delta"), ratios.get("single_vs_plain_delta_single")
    return (
        f"| {case}: {results['landing_rows']:,} landing rows, {len(results['quarters'])} quarters "
        f"| {ratios['backfill_vs_plain']:.2f} × | {ratios['single_vs_plain_single']:.2f} × "
        f"| {' / '.join(f'{r:.2f} ×' for r in delta) if None not in delta else '–'} "
        f"| {results['started'][:10]}, {results['environment']['git_commit'][:7]} |"
    )


def test_the_readmes_performance_figures_are_the_latest_benchmark_results():
    text = README.read_text()
    section = text[text.index("## Performance") :]
    section = section[: section.index("\n## ")]
    rows = [line for line in section.splitlines() if re.match(r"\| (XS|S|M|L|real|long)\b", line)]
    assert rows == [performance_row(case) for case in PERFORMANCE_CASES]
    assert "benchmarks/FINDINGS.md" in section and "benchmarks/README.md" in section


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=str)
def test_a_python_recipe_runs_as_printed(demo_project, block, tmp_path):
    # Not what the suite's in-process runs left behind: MLflow keeps its last store in MLFLOW_* variables
    # (the suite's staging folder for Spark models, MLFLOW_DFS_TMP, stays). TMPDIR: a recipe's temporary
    # folders (`tempfile.mkdtemp()`) are the test's, not left in /tmp.
    env = {
        **{
            name: value
            for name, value in os.environ.items()
            if not name.startswith("MLFLOW_") or name == "MLFLOW_DFS_TMP"
        },
        "BATCH_PLATFORM_CONFIG": str(demo_project / "config" / "config.yaml"),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "TZ": "UTC",
        "TMPDIR": str(tmp_path),
    }
    done = subprocess.run(
        [sys.executable, "-c", block.code], cwd=demo_project, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{block} failed:\n{done.stdout[-2000:]}\n{done.stderr[-6000:]}"
