"""Publishing to PostgreSQL (SPEC.md, "Delivery"): the real publishing assets, in real Dagster runs,
copy the quarters of a real lake (bronze → silver → gold on generated data) into a throwaway
PostgreSQL cluster; a reader in a concurrent transaction never sees a partial quarter; the
password never shows.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.compute as pc
import pytest
from dagster._core.remote_representation.external_data import RepositorySnap
from dagster._serdes import serialize_value
from deltalake import DeltaTable
from psycopg import sql

from batch_platform.api import TOKEN_ENV
from batch_platform.assets.publish import PUBLISHED_TABLES, build_publish_assets
from batch_platform.config import ConfigError, load_config, parse_config
from batch_platform.definitions import build_definitions
from batch_platform.lake_files import Lake
from batch_platform.partitions import to_key
from batch_platform.postgres import connection_parameters, ensure_table, pg_columns, redact, replace_quarter
from batch_platform.resources import build_resources
from batch_platform.schemas.gold import TRAINING_KEY, TrainingSet
from batch_platform.schemas.ml import ChurnScores
from batch_platform_tests.delivery_fixtures import DELIVERY_QUARTERS
from batch_platform_tests.delta_fixtures import commit_rows, copy_lake, customers, model_rows
from batch_platform_tests.ml_fixtures import store_client
from batch_platform_tests.platform import (
    TEST_SPARK,
    dagster_env,
    make_config,
    materialisations,
    materialize_range,
    quarterly,
)
from batch_platform_tests.procs import free_port
from batch_platform_tests.readme import doc_blocks
from batch_platform_tests.secret_scan import places_holding

PASSWORD_VAR = "BATCH_PLATFORM_TEST_PG_PASSWORD"
SCHEMA = "ml"  # the docs' example schema (README, docs/delivery.md): their recipes run against this publication
PUBLISH_KEY = dg.AssetKey(["publish", "training_set"])
CLI = str(Path(sys.executable).parent / "batch-platform")


@pytest.fixture(scope="module")
def password_env(postgres_server):
    os.environ[PASSWORD_VAR] = postgres_server.password
    yield PASSWORD_VAR
    os.environ.pop(PASSWORD_VAR, None)


def publish_config(lake_config, dsn: str, tmp_path):
    return make_config(tmp_path, storage={"lake_root": lake_config.lake_root},
                       publish={"postgres": {"dsn": dsn, "schema": SCHEMA}})  # fmt: skip


def run_publish(config, first, last=None, instance=None, raise_on_error=True):
    return materialize_range(build_publish_assets(quarterly, config), build_resources(config), first, last,
                             instance=instance, raise_on_error=raise_on_error)  # fmt: skip


def training_quarter(config, quarter: str) -> pd.DataFrame:
    """A quarter of `gold/training_set` as the latest Delta version holds it, `quarter` first."""
    table = DeltaTable(f"{config.lake_root}/gold/training_set")
    frame = table.to_pandas(filters=[("quarter", "=", quarter)]).drop(columns="quarter")
    frame.insert(0, "quarter", quarter)
    return frame.sort_values("customer_id").reset_index(drop=True)


def pg_quarter(conn, quarter: str) -> pd.DataFrame:
    cursor = conn.execute(
        f"SELECT * FROM {SCHEMA}.training_set WHERE quarter = %s ORDER BY customer_id",
        [quarter],
    )
    frame = pd.DataFrame(cursor.fetchall(), columns=[d.name for d in cursor.description])
    for column in frame.columns:
        if column.endswith(("_ts", "cutoff", "_start", "_end")):
            frame[column] = pd.to_datetime(frame[column], utc=True).astype("datetime64[us, UTC]")
    return frame


def figures(conn, quarter: str) -> tuple:
    return conn.execute(
        f"SELECT count(*), sum(txn_count), sum(label) FROM {SCHEMA}.training_set WHERE quarter = %s",
        [quarter],
    ).fetchone()


@pytest.fixture(scope="module")
def published(delivery_lake, postgres_server, password_env, tmp_path_factory):
    """One single-run backfill publishing every quarter of the lake."""
    config = publish_config(
        delivery_lake,
        postgres_server.dsn_with_env(password_env),
        tmp_path_factory.mktemp("pub"),
    )
    with dg.instance_for_test() as instance:
        result = run_publish(config, DELIVERY_QUARTERS[0], DELIVERY_QUARTERS[-1], instance=instance)
        logs = [serialize_value(entry) for entry in instance.all_logs(result.run_id)]
    return {"config": config, "result": result, "logs": logs}


# ------------------------------------------------------------------------------------- config
def test_the_dsn_keeps_its_password_in_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_SECRET_X", "s3cr3t-Pass")
    template = "postgresql://app:${PG_SECRET_X}@db.internal:5433/analytics"
    config = make_config(tmp_path, publish={"postgres": {"dsn": template, "schema": "marts"}})
    assert config.publish.postgres.dsn == template
    assert config.publish.postgres.db_schema == "marts"
    assert "s3cr3t-Pass" not in str(config.redacted())
    resource = build_resources(config)["postgres"]
    assert resource.dsn == template and "s3cr3t-Pass" not in repr(resource)
    assert resource.describe() == "app@db.internal:5433/analytics"


@pytest.mark.parametrize(
    "template",
    [
        "postgresql://app:${PG_SECRET_X}@db.internal:5433/analytics",
        "host=db.internal port=5433 dbname=analytics user=app password=${PG_SECRET_X}",
        "host=db.internal port=5433 dbname=analytics user=app password='${PG_SECRET_X}'",
    ],
)
def test_a_password_with_url_delimiters_is_one_connection_parameter(template, monkeypatch):
    """`@ / : # % ?` (and a space, a quote) in the password: the template is parsed before the
    variable's value is put in, so no part of it becomes the host, port or database."""
    password = "p@ss/w:rd#50%?x y'z"
    monkeypatch.setenv("PG_SECRET_X", password)
    assert connection_parameters(template) == {
        "host": "db.internal", "port": "5433", "dbname": "analytics", "user": "app", "password": password,
    }  # fmt: skip


def test_the_whole_dsn_may_come_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_WHOLE_DSN", "host=db.internal port=6432 dbname=w user=app password=Wh0le-pw")
    config = make_config(tmp_path, publish={"postgres": {"dsn": "${PG_WHOLE_DSN}"}})
    resource = build_resources(config)["postgres"]
    assert resource.dsn == "${PG_WHOLE_DSN}" and resource.db_schema == "public"
    assert resource.describe() == "app@db.internal:6432/w"


@pytest.mark.parametrize(
    ("dsn", "message"),
    [
        ("postgresql://app:hunter2pw@db:5432/x", "password is written in the file"),
        ("host=db user=app password=hunter2pw", "password is written in the file"),
        (
            "postgresql://app:${PG_UNSET_FOR_TEST}@db/x",
            "PG_UNSET_FOR_TEST, which are not set",
        ),
    ],
)
def test_a_literal_or_missing_password_fails_at_load_without_showing_it(dsn, message):
    os.environ.pop("PG_UNSET_FOR_TEST", None)
    with pytest.raises(ConfigError) as error:
        parse_config({"publish": {"postgres": {"dsn": dsn}}}, "test")
    assert message in str(error.value) and "publish.postgres.dsn" in str(error.value)
    assert "hunter2pw" not in str(error.value)


def test_redact_hides_url_and_keyword_passwords():
    assert redact("postgresql://u:pw@h/db x") == "postgresql://u:***@h/db x"
    assert redact("host=h password='p w' user=u") == "host=h password=*** user=u"
    assert redact("failed for secretvalue", "secretvalue") == "failed for ***"


# -------------------------------------------------------------------------------- definitions
def test_without_publish_postgres_there_are_no_publishing_assets(tmp_path):
    from batch_platform.definitions import build_definitions

    assert build_publish_assets(quarterly, make_config(tmp_path)) == []
    assert "postgres" not in build_resources(make_config(tmp_path))
    defs = build_definitions(make_config(tmp_path))
    assert not [key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] == "publish"]


def test_publishing_assets_follow_the_published_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("PG_SECRET_X", "pw")
    config = make_config(tmp_path, publish={"postgres": {"dsn": "postgresql://a:${PG_SECRET_X}@h/d"}})
    assets = build_publish_assets(quarterly, config)
    assert PUBLISHED_TABLES[0] == TRAINING_KEY
    assert [a.key for a in assets] == [dg.AssetKey(["publish", k.path[-1]]) for k in PUBLISHED_TABLES]
    graph = dg.Definitions(assets=assets, resources=build_resources(config)).resolve_asset_graph()
    node = graph.get(PUBLISH_KEY)
    assert set(node.parent_keys) == {TRAINING_KEY}
    assert node.partitions_def == quarterly
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.group_name == "publish" and "postgres" in node.kinds


def test_the_quarterly_job_publishes_what_it_builds(tmp_path, monkeypatch):
    from batch_platform.definitions import build_definitions

    def job_keys(config):
        defs = build_definitions(config)
        assert "postgres" in defs.resources or config.publish.postgres is None
        return set(defs.resolve_job_def("training_set_job").asset_layer.selected_asset_keys)

    monkeypatch.setenv("PG_SECRET_X", "pw")
    plain = job_keys(make_config(tmp_path))
    published = job_keys(make_config(tmp_path, publish={"postgres": {"dsn": "postgresql://a:${PG_SECRET_X}@h/d"}}))
    assert TRAINING_KEY in plain and PUBLISH_KEY not in plain
    assert published == plain | {PUBLISH_KEY}


# --------------------------------------------------------------------------------- publishing
def test_every_quarter_in_postgres_equals_the_lake(published, postgres_server):
    assert published["result"].success
    config = published["config"]
    with postgres_server.connect() as conn:
        for quarter in DELIVERY_QUARTERS:
            lake = training_quarter(config, quarter)
            pd.testing.assert_frame_equal(pg_quarter(conn, quarter), lake, check_dtype=False)
        assert figures(conn, "2024-Q3")[0] == len(lake) > 20
        assert figures(conn, "2024-Q1")[0] == 0  # the first quarter has no lookback: empty


def test_the_table_has_the_models_types_and_the_primary_key(published, postgres_server):
    with postgres_server.connect() as conn:
        types = dict(conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'training_set'", [SCHEMA]).fetchall())  # fmt: skip
        key = conn.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)", [f"{SCHEMA}.training_set"]).fetchall()  # fmt: skip
    assert set(types) == {c.name for c in pg_columns(TrainingSet)}
    assert types["txn_count"] == "bigint" and types["recency_days"] == "integer"
    assert types["total_amount"] == "double precision" and types["customer_id"] == "text"
    assert types["feature_cutoff"] == "timestamp with time zone"
    assert [row[0] for row in key] == ["quarter", "customer_id"]


def test_each_quarter_reports_its_figures(published):
    result = published["result"]
    for quarter in DELIVERY_QUARTERS:
        metadata = result.asset_materializations_for_node("publish__training_set")
        by_key = {m.partition: m.metadata for m in metadata}
        entry = by_key[to_key(quarter)]
        assert entry["dagster/row_count"].value == len(training_quarter(published["config"], quarter))
        assert entry["rows_replaced"].value == 0
        assert entry["table"].value == f"{SCHEMA}.training_set"
        assert entry["database"].value.startswith("platform@127.0.0.1:")
        assert entry["lake_version"].value == DeltaTable(f"{published['config'].lake_root}/gold/training_set").version()


def test_the_password_is_in_no_event_of_the_run(published, postgres_server):
    assert published["logs"] and not [log for log in published["logs"] if postgres_server.password in log]


# ------------------------------------------------------------------------------------- secrets
SPARK_SECRET_KEY = "spark.hadoop.fs.azure.account.key.example.dfs.core.windows.net"
TRAINABLE = 150
"""Rows of the secret run's 2024-Q3 training set: enough train and eval rows for `ml/churn_model`."""


@pytest.fixture(scope="module")
def secret_run(spark, delta_lake, postgres_server, tmp_path_factory):
    """`batch-platform materialize` of the publishing assets, `ml/churn_model` (MLflow runs, models
    and their artifacts in the local store beside the lake) and `bronze/operational`
    over 2024-Q2…2024-Q3, on a copy of the readers' Delta lake whose 2024-Q3 training set is large
    enough to train on (`TRAINABLE` rows) and a small landing zone, in a process of its own with its
    own DAGSTER_HOME, and a secret of every kind the platform knows in its environment: a
    `spark.conf` value and the `storage.s3` keys (`${NAME}` in the config file), the password of a
    PostgreSQL role made for it, holding `@ / : # % ?`, MLflow's credentials and the API token."""
    from batch_platform.sample_data import generate_landing

    root = tmp_path_factory.mktemp("secrets")
    lake = copy_lake(delta_lake, root / "lake")
    trainable = {"2024-Q3": model_rows(TRAINING_KEY.to_user_string(), "2024-Q3", customers(TRAINABLE, 5), 4)}
    commit_rows(spark, lake.root, TRAINING_KEY.to_user_string(), trainable, "run-c")
    generate_landing(root / "landing", first_quarter="2024-Q2", last_quarter="2024-Q3", customers=10, seed=3)
    values = {
        "BP_SECRET_SPARK": "spark-" + secrets.token_urlsafe(18),
        "BP_SECRET_S3_KEY": "AKIA" + secrets.token_hex(8).upper(),
        "BP_SECRET_S3_SECRET": "s3-" + secrets.token_urlsafe(24),
        "BP_SECRET_PG_PASSWORD": "p@ss/w:rd#50%?" + secrets.token_urlsafe(12),
        "MLFLOW_TRACKING_USERNAME": "mlflow-user",
        "MLFLOW_TRACKING_PASSWORD": "mlflow-" + secrets.token_urlsafe(18),
        "MLFLOW_TRACKING_TOKEN": "mlflow-token-" + secrets.token_urlsafe(18),
        TOKEN_ENV: "api-" + secrets.token_urlsafe(24),
    }
    server = postgres_server
    with server.connect(autocommit=True) as conn:
        password = sql.Literal(values["BP_SECRET_PG_PASSWORD"])
        conn.execute(sql.SQL("CREATE ROLE vault_publisher LOGIN PASSWORD {}").format(password))
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO vault_publisher").format(sql.Identifier(server.dbname)))
    config = {
        "storage": {
            "landing_root": str(root / "landing"),
            "lake_root": lake.root,
            "s3": {"endpoint_url": "http://127.0.0.1:9", "region": "eu-west-1", "path_style_access": True,
                   "access_key_id": "${BP_SECRET_S3_KEY}", "secret_access_key": "${BP_SECRET_S3_SECRET}"},
        },
        "spark": {**TEST_SPARK, "conf": {**TEST_SPARK["conf"], SPARK_SECRET_KEY: "${BP_SECRET_SPARK}"}},
        "publish": {"postgres": {"schema": "vault", "dsn": (
            f"postgresql://vault_publisher:${{BP_SECRET_PG_PASSWORD}}@{server.host}:{server.port}/{server.dbname}")}},
    }  # fmt: skip
    env = {**dagster_env(root, config), **values}
    done = subprocess.run(
        [CLI, "materialize", "--from", "2024-Q2", "--to", "2024-Q3", "--select", "group:publish",
         "--select", "key:bronze/operational", "--select", "key:ml/churn_model"],
        env=env, cwd=root, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    return {"done": done, "root": root, "home": Path(env["DAGSTER_HOME"]), "config": root / "config.yaml",
            "lake": lake.root, "secrets": values}  # fmt: skip


def test_no_configured_secret_reaches_dagster_home_output_events_or_resource_config(
    secret_run, postgres_server, monkeypatch
):
    done, home, values = secret_run["done"], secret_run["home"], secret_run["secrets"]
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    with postgres_server.connect() as conn:
        published = conn.execute("SELECT quarter, count(*) FROM vault.training_set GROUP BY quarter").fetchall()
    assert sorted(published) == [("2024-Q2", 32), ("2024-Q3", TRAINABLE)]  # with the password of @ / : # % ?
    assert DeltaTable(f"{secret_run['lake']}/bronze/operational").version() == 0  # written by a Spark session
    cards = DeltaTable(f"{secret_run['lake']}/ml/churn_model").to_pandas(filters=[("quarter", "=", "2024-Q3")])
    client = store_client(secret_run["root"])
    (experiment,) = [e for e in client.search_experiments() if e.name != "Default"]
    runs = client.search_runs([experiment.experiment_id])
    assert len(cards) > 1 and set(cards["mlflow_run_id"]) == {r.info.run_id for r in runs}  # the quarter's, no other
    assert Path(experiment.artifact_location.removeprefix("file://")).is_dir()  # the models' artifacts
    # The user name is not a secret: MLflow records who ran each run (the `mlflow.user` tag) on purpose.
    assert {r.info.user_id for r in runs} == {values["MLFLOW_TRACKING_USERNAME"]}
    shown = [value for name, value in values.items() if name != "MLFLOW_TRACKING_USERNAME"]
    # Every file of the home, every value of its databases, decompressed: the scan reads the job
    # snapshots (zlib), where the resource config keeps the variables' names, never their values.
    # Then the whole folder of the run: the lake, the MLflow store's database and artifacts.
    assert places_holding(home, ["BP_SECRET_SPARK", "BP_SECRET_S3_SECRET"])
    assert places_holding(secret_run["root"], shown) == []
    assert not [secret for secret in shown if secret in done.stdout + done.stderr]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        events = [serialize_value(event) for event in instance.all_logs(run.run_id)]
        stored = serialize_value(instance.get_job_snapshot(run.job_snapshot_id)) + str(run.run_config)
    assert any("vault.training_set 2024-Q3" in event for event in events)
    assert not [event for event in events if any(secret in event for secret in shown)]
    assert "${BP_SECRET_SPARK}" in stored and "BP_SECRET_S3_SECRET" in stored and "${BP_SECRET_PG_PASSWORD}" in stored
    # What the code server hands the UI (its Resources page): the same references.
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    defs = build_definitions(load_config(secret_run["config"]))
    ui = serialize_value(RepositorySnap.from_def(defs.get_repository_def()))
    assert "${BP_SECRET_SPARK}" in ui and not [secret for secret in shown if secret in ui]


def test_republishing_a_quarter_replaces_it_and_touches_no_other(published, postgres_server, tmp_path):
    config = published["config"]
    with postgres_server.connect() as conn:

        def versions(q):
            sql = f"SELECT customer_id, xmin::text FROM {SCHEMA}.training_set WHERE quarter = %s"
            return dict(conn.execute(sql, [q]).fetchall())

        before = {q: versions(q) for q in DELIVERY_QUARTERS}
        conn.commit()
        assert run_publish(config, "2024-Q2").success
        assert run_publish(config, "2024-Q2").success
        after = {q: versions(q) for q in DELIVERY_QUARTERS}
        assert after["2024-Q3"] == before["2024-Q3"]  # not rewritten, not even in place
        assert set(after["2024-Q2"]) == set(before["2024-Q2"])
        assert not set(after["2024-Q2"].values()) & set(before["2024-Q2"].values())
        pd.testing.assert_frame_equal(
            pg_quarter(conn, "2024-Q2"),
            training_quarter(config, "2024-Q2"),
            check_dtype=False,
        )


@pytest.fixture
def publication_restored(published):
    """For a test that replaces a published quarter with rows of its own: every quarter published
    again from the lake afterwards (the publishing run of `published`), also when the test fails, as
    the module's other tests (in any order) read them."""
    yield
    assert run_publish(published["config"], DELIVERY_QUARTERS[0], DELIVERY_QUARTERS[-1]).success


def test_a_concurrent_reader_sees_the_old_quarter_or_the_new_never_a_mix(
    published, postgres_server, publication_restored
):
    """The writer pauses halfway through its COPY (the DELETE done); readers, in READ COMMITTED and
    in a REPEATABLE READ transaction, see the old quarter whole; after the commit the new one whole.
    A third reader polls throughout, from before the writer starts: only ever the old or the new."""
    config, quarter = published["config"], "2024-Q3"
    lake = Lake.from_config(config)
    columns = [c.name for c in pg_columns(TrainingSet)][1:]
    halfway, resume, done, polled = threading.Event(), threading.Event(), threading.Event(), threading.Event()
    eval_only = [
        b.filter(pc.equal(b.column("split"), "eval"))
        for b in lake.quarter("gold/training_set", quarter).batches(columns, 8)
    ]

    def paused():
        for i, batch in enumerate(eval_only):
            if i == len(eval_only) // 2:
                halfway.set()
                resume.wait(60)
            yield batch

    seen, errors = set(), []

    def poll():
        with postgres_server.connect(autocommit=True) as conn:
            while not done.is_set():
                seen.add(figures(conn, quarter))
                polled.set()

    def write():
        try:
            with postgres_server.connect(autocommit=True) as conn:
                replace_quarter(conn, SCHEMA, "training_set", TrainingSet, quarter, paused())
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            halfway.set()

    with (
        postgres_server.connect(autocommit=True) as reader,
        postgres_server.connect(autocommit=True) as snapshot,
    ):
        old = figures(reader, quarter)
        poller, writer = threading.Thread(target=poll), threading.Thread(target=write)
        poller.start()
        assert polled.wait(60), "the poller's first read"
        writer.start()
        try:
            assert halfway.wait(60) and not errors
            in_flight = reader.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%%' "
                                       "AND backend_xid IS NOT NULL").fetchone()[0]  # fmt: skip
            assert in_flight == 1  # the writer holds a transaction that has already deleted
            snapshot.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            assert figures(snapshot, quarter) == old
            assert figures(reader, quarter) == old
        finally:
            resume.set()
            writer.join(60)
        assert not errors
        new = figures(reader, quarter)
        assert new[0] == sum(b.num_rows for b in eval_only) and new != old
        assert figures(snapshot, quarter) == old  # its snapshot predates the commit
        snapshot.execute("COMMIT")
        assert figures(snapshot, quarter) == new
        done.set()
        poller.join(30)
    assert seen <= {old, new} and old in seen


def test_a_quarter_is_published_from_one_delta_version_while_a_run_replaces_it(
    delta_lake, postgres_server, tmp_path, spark
):
    """A run commits a new 2024-Q2 to the lake while the publisher is halfway through streaming it:
    the publisher reads the files of the version it opened, which no commit rewrites, so PostgreSQL
    gets that version's rows whole — not the new ones, not a mix, not the replaced files that the
    quarter's folder still holds (what a listing of the folder would add)."""
    copy = copy_lake(delta_lake, tmp_path / "lake")
    snapshot = Lake(copy.root).quarter("gold/training_set", "2024-Q2")
    assert snapshot.version == 1 and len(
        list(Path(copy.root, "gold/training_set/quarter=2024-Q2").glob("*.parquet"))
    ) > len(snapshot.files)
    columns = [c.name for c in pg_columns(TrainingSet)][1:]
    replaced = []

    def interrupted():
        for i, batch in enumerate(snapshot.batches(columns, 8)):
            if i == 1:  # a concurrent run replaces the quarter
                rows = model_rows("gold/training_set", "2024-Q2", customers(25, 500), 4)
                replaced.append(commit_rows(spark, copy.root, "gold/training_set", {"2024-Q2": rows}, "run-c"))
            yield batch

    with postgres_server.connect(autocommit=True) as conn:
        ensure_table(conn, "one_version", "training_set", TrainingSet)
        done = replace_quarter(conn, "one_version", "training_set", TrainingSet, "2024-Q2", interrupted())
        published = conn.execute(
            "SELECT customer_id FROM one_version.training_set WHERE quarter = '2024-Q2'"
        ).fetchall()
    assert replaced == [2] and Lake(copy.root).quarter("gold/training_set", "2024-Q2").rows == 25
    expected = sorted(row["customer_id"] for row in delta_lake.rows[("gold/training_set", "2024-Q2", 1)])
    assert done.rows_loaded == 32 and sorted(row[0] for row in published) == expected


def test_an_unreachable_database_fails_naming_the_host_without_the_password(delivery_lake, tmp_path, monkeypatch):
    monkeypatch.setenv("PG_DOWN_PASSWORD", "do-not-show-this-pw")
    port = free_port()
    config = publish_config(
        delivery_lake,
        f"postgresql://platform:${{PG_DOWN_PASSWORD}}@127.0.0.1:{port}/x",
        tmp_path,
    )
    with dg.instance_for_test() as instance:
        result = run_publish(config, "2024-Q2", instance=instance, raise_on_error=False)
        logs = [serialize_value(entry) for entry in instance.all_logs(result.run_id)]
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert f"cannot connect to PostgreSQL at platform@127.0.0.1:{port}/x" in failure
    assert not [log for log in logs if "do-not-show-this-pw" in log]


# ------------------------------------------------------------------------------ upgrades
NEW_COLUMNS = {
    "training_set": ("contract", "payment_method", "monthly_charges", "country", "tenure_months"),
    "churn_scores": ("model_version", "promoted"),
}
"""The columns each published table gained this week: the profile features; the scores' champion."""
MODELS = {"training_set": TrainingSet, "churn_scores": ChurnScores}


def create_table(conn, schema: str, table: str, columns: dict[str, str]) -> None:
    """`schema.table` as an older platform created it: `columns` (name: PostgreSQL type), its key."""
    declared = sql.SQL(", ").join(sql.SQL("{} {}").format(sql.Identifier(n), sql.SQL(t)) for n, t in columns.items())
    conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    conn.execute(sql.SQL("CREATE TABLE {}.{} ({}, PRIMARY KEY (quarter, customer_id))").format(
        sql.Identifier(schema), sql.Identifier(table), declared))  # fmt: skip


def columns_before_the_upgrade(table: str, **retyped: str) -> dict[str, str]:
    """The table's columns as the platform published them before the new ones, some `retyped`."""
    columns = {c.name: c.type for c in pg_columns(MODELS[table]) if c.name not in NEW_COLUMNS[table]}
    return {**columns, **retyped}


def pg_columns_of(conn, schema: str, table: str) -> dict[str, tuple[str, str]]:
    """name: (type, nullable) as information_schema shows them."""
    rows = conn.execute(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position", [schema, table]).fetchall()  # fmt: skip
    return {name: (kind, nullable) for name, kind, nullable in rows}


def lake_and_pg(conn, lake_root: str, schema: str, table: str, quarter: str, columns) -> tuple[list, list]:
    layer = "gold" if table == "training_set" else "ml"
    lake = DeltaTable(f"{lake_root}/{layer}/{table}").to_pandas(filters=[("quarter", "=", quarter)])
    expected = sorted(tuple(row) for row in lake[["customer_id", *columns]].itertuples(index=False))
    query = sql.SQL("SELECT customer_id, {} FROM {}.{} WHERE quarter = %s ORDER BY customer_id").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema), sql.Identifier(table))  # fmt: skip
    return expected, [tuple(row) for row in conn.execute(query, [quarter]).fetchall()]


def test_a_table_created_before_an_upgrade_gains_the_new_columns(delta_lake, postgres_server, password_env, tmp_path):
    """Both published tables exist with the columns of last week, and a quarter published then: the
    next publication adds the new columns (nullable) and fills them for its quarter; the old quarter
    keeps its rows, NULL in the new columns, until it is published again."""
    with postgres_server.connect() as conn:
        for table in MODELS:
            create_table(conn, "upgrade", table, columns_before_the_upgrade(table))
            conn.execute(sql.SQL("INSERT INTO upgrade.{} (quarter, customer_id) VALUES ('2023-Q4', 'OLD')").format(
                sql.Identifier(table)))  # fmt: skip
    dsn = postgres_server.dsn_with_env(password_env)
    config = make_config(tmp_path, storage={"lake_root": delta_lake.root},
                         publish={"postgres": {"dsn": dsn, "schema": "upgrade"}})  # fmt: skip
    result = run_publish(config, "2024-Q2")
    assert result.success
    with postgres_server.connect() as conn:
        for table in MODELS:
            found = pg_columns_of(conn, "upgrade", table)
            assert list(found) == [*columns_before_the_upgrade(table), *NEW_COLUMNS[table]]  # added at the end
            assert {name: found[name][1] for name in NEW_COLUMNS[table]} == dict.fromkeys(NEW_COLUMNS[table], "YES")
            expected, published = lake_and_pg(conn, delta_lake.root, "upgrade", table, "2024-Q2", NEW_COLUMNS[table])
            assert published == expected and len(published) >= 20
            assert not [row for row in published if None in row]  # every new column holds the lake's values
            old = conn.execute(sql.SQL("SELECT {} FROM upgrade.{} WHERE quarter = '2023-Q4'").format(
                sql.SQL(", ").join(map(sql.Identifier, NEW_COLUMNS[table])), sql.Identifier(table))).fetchall()  # fmt: skip
            assert old == [(None,) * len(NEW_COLUMNS[table])]
        assert found["model_version"][0] == "integer" and found["promoted"][0] == "boolean"
    recorded = {key.path[-1]: materialisations(result, key)[to_key("2024-Q2")] for key in
                (PUBLISH_KEY, dg.AssetKey(["publish", "churn_scores"]))}  # fmt: skip
    assert {table: m["columns_added"] for table, m in recorded.items()} == {
        table: ", ".join(columns) for table, columns in NEW_COLUMNS.items()
    }
    again = run_publish(config, "2024-Q3")
    assert again.success and "columns_added" not in materialisations(again, PUBLISH_KEY)[to_key("2024-Q3")]


def test_the_new_columns_are_added_in_the_quarters_transaction(delta_lake, postgres_server):
    """A quarter whose rows fail halfway leaves the table as it was: its old rows, no new column."""
    snapshot = Lake(delta_lake.root).quarter("ml/churn_scores", "2024-Q2")
    columns = [c.name for c in pg_columns(ChurnScores)][1:]

    def failing():
        yield from snapshot.batches(columns, 8)
        raise OSError("the lake went away")

    with postgres_server.connect(autocommit=True) as conn:
        create_table(conn, "halfway", "churn_scores", columns_before_the_upgrade("churn_scores"))
        conn.execute("INSERT INTO halfway.churn_scores (quarter, customer_id) VALUES ('2024-Q2', 'OLD')")
        with pytest.raises(OSError, match="the lake went away"):
            replace_quarter(conn, "halfway", "churn_scores", ChurnScores, "2024-Q2", failing())
        assert not set(NEW_COLUMNS["churn_scores"]) & set(pg_columns_of(conn, "halfway", "churn_scores"))
        assert conn.execute("SELECT customer_id FROM halfway.churn_scores").fetchall() == [("OLD",)]
        done = replace_quarter(conn, "halfway", "churn_scores", ChurnScores, "2024-Q2", snapshot.batches(columns, 8))
        assert done.columns_added == NEW_COLUMNS["churn_scores"] and done.rows_deleted == 1
        expected, published = lake_and_pg(conn, delta_lake.root, "halfway", "churn_scores", "2024-Q2", columns[1:])
        assert published == expected


def test_a_column_type_change_is_refused_naming_the_table_the_column_and_the_types(
    delta_lake, postgres_server, password_env, tmp_path
):
    """`model_version` published as text by some earlier hand: refused, and nothing is changed —
    not the missing `promoted` added, not the quarter's rows replaced."""
    columns = columns_before_the_upgrade("churn_scores", model_version="text")
    with postgres_server.connect() as conn:
        create_table(conn, "retyped", "churn_scores", columns)
        conn.execute("INSERT INTO retyped.churn_scores (quarter, customer_id) VALUES ('2024-Q2', 'OLD')")
    config = make_config(tmp_path, storage={"lake_root": delta_lake.root}, publish={
        "postgres": {"dsn": postgres_server.dsn_with_env(password_env), "schema": "retyped"}})  # fmt: skip
    result = run_publish(config, "2024-Q2", raise_on_error=False)
    failures = {
        event.step_key: event.step_failure_data.error.message for event in result.all_events if event.is_step_failure
    }
    assert list(failures) == ["publish__churn_scores"]  # the training set's table is new: created
    assert (
        "retyped.churn_scores exists with columns the platform does not change; migrate the table (or drop it to "
        "have it created again), then publish again: model_version: table has text, model wants integer (a type "
        "change is refused)" in failures["publish__churn_scores"]
    )
    with postgres_server.connect() as conn:
        assert pg_columns_of(conn, "retyped", "churn_scores").keys() == columns.keys()
        assert conn.execute("SELECT customer_id FROM retyped.churn_scores").fetchall() == [("OLD",)]


def test_an_existing_table_with_other_columns_is_not_overwritten(delta_lake, postgres_server, password_env, tmp_path):
    """A column the model does not have (dropped from the contract, or someone else's table) is not
    dropped: the publication fails naming it, and each other column it cannot change."""
    with postgres_server.connect() as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS legacy")
        conn.execute("CREATE TABLE IF NOT EXISTS legacy.training_set (quarter text, customer_id text, score real)")
    config = make_config(
        tmp_path,
        storage={"lake_root": delta_lake.root},
        publish={"postgres": {"dsn": postgres_server.dsn_with_env(password_env), "schema": "legacy"}},
    )
    result = run_publish(config, "2024-Q2", raise_on_error=False)
    failure = next(e for e in result.all_events if e.is_step_failure).step_failure_data.error.message
    assert "legacy.training_set exists with columns the platform does not change" in failure
    assert "score: table has real, the model has no such column" in failure
    assert "customer_id: the table lacks this key column" not in failure
    with postgres_server.connect() as conn:
        assert list(pg_columns_of(conn, "legacy", "training_set")) == ["quarter", "customer_id", "score"]


def test_the_readmes_postgresql_recipes_run_as_printed(published, postgres_server, monkeypatch):
    from urllib.parse import quote

    blocks = [block for block in doc_blocks("python", "sql") if block.section == "Publishing to PostgreSQL"]
    assert sorted((block.file, block.language) for block in blocks) == [
        ("README.md", "sql"),
        ("docs/delivery.md", "python"),
        ("docs/delivery.md", "sql"),
    ]
    server = postgres_server
    url = f"postgresql+psycopg://{server.user}:{quote(server.password, safe='')}@{server.host}:{server.port}/{server.dbname}"
    monkeypatch.setenv("ANALYTICS_DATABASE_URL", url)
    for block in blocks:
        if block.language == "sql":
            with server.connect() as conn:
                rows = conn.execute(block.code).fetchall()
            assert {row[0] for row in rows} == {"train", "eval"}, block
        else:
            namespace: dict = {"__name__": "__main__"}
            exec(compile(block.code, str(block), "exec"), namespace)
            with server.connect() as conn:
                assert len(namespace["df"]) == figures(conn, "2024-Q3")[0] > 0, block
