from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from dagster_pyspark import PySparkResource

from batch_platform.config import DEFAULT_CONFIG_PATH, ConfigError, load_config, parse_config
from batch_platform.resources import build_pyspark
from batch_platform.session import spark_conf
from batch_platform_tests.delta_fixtures import write_quarters
from batch_platform_tests.platform import make_config


def test_the_shipped_config_loads_with_the_spec_defaults():
    config = load_config(DEFAULT_CONFIG_PATH)
    assert config.batch.first_quarter == "2024-Q1"
    assert config.batch.lookback_quarters == 4
    assert config.batch.prediction_window_days == 90
    assert config.batch.eval_fraction == 0.2
    assert config.spark.master == "local[*]"
    assert config.lake_root == str(Path(__file__).resolve().parents[1] / "data" / "lake")


def test_the_environment_variable_selects_the_file(tmp_path, monkeypatch):
    path = tmp_path / "other.yaml"
    path.write_text(
        "batch:\n  first_quarter: 2023-10-01\n  lookback_quarters: 2\nstorage:\n  lake_root: s3a://bucket/lake\n"
    )
    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(path))
    config = load_config()
    assert config.batch.first_quarter == "2023-Q4"
    assert config.batch.lookback_quarters == 2
    assert config.lake_root == "s3a://bucket/lake"
    assert config.source_path == str(path)


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"batch": {"first_quarter": "2024-Q5"}}, "key 'batch.first_quarter' has bad value '2024-Q5'"),
        ({"batch": {"eval_fraction": 1.5}}, "key 'batch.eval_fraction' has bad value 1.5"),
        ({"batch": {"lookback_quarters": 0}}, "key 'batch.lookback_quarters' has bad value 0"),
        ({"batch": {"prediction_window_days": "ninety"}}, "key 'batch.prediction_window_days' has bad value 'ninety'"),
        ({"storage": {"lake_rot": "x"}}, "unknown key 'storage.lake_rot'"),
        ({"sparks": {}}, "unknown key 'sparks'"),
        ({"checks": {"quarantine_rate_warn": 0.6, "quarantine_rate_fail": 0.5}}, "must not exceed"),
        ({"spark": {"conf": {"spark.sql.session.timeZone": "Europe/Paris"}}}, "must be UTC"),
        ({"api": {"public_url": "data.example.com"}}, "key 'api.public_url' has bad value 'data.example.com'"),
        ({"api": {"public_url": "https://u:hunter2@data.example.com"}}, "must hold no user, password, query"),
        ({"api": {"public_url": "https://data.example.com/?token=x"}}, "must hold no user, password, query"),
    ],
)
def test_bad_values_and_unknown_keys_fail_naming_key_and_value(raw, message):
    with pytest.raises(ConfigError) as error:
        parse_config(raw, "cfg.yaml")
    assert message in str(error.value)
    assert "cfg.yaml" in str(error.value) and "hunter2" not in str(error.value)


def test_the_apis_public_url_is_a_base_url():
    assert parse_config({}).api.public_url is None
    config = parse_config({"api": {"public_url": "https://data.example.com/lake-api/"}})
    assert config.api.public_url == "https://data.example.com/lake-api"


SPARK_SECRET_KEY = "spark.hadoop.fs.azure.account.key.example.dfs.core.windows.net"
"""A secret no key-name heuristic spots ("account.key"), set on the shared session by a test: harmless."""


def test_a_spark_conf_secret_reaches_the_session_but_not_the_resource_config_dagster_stores(monkeypatch, tmp_path):
    monkeypatch.setenv("LAKE_SECRET", "s3cr3t-value")
    config = make_config(tmp_path, spark={"conf": {SPARK_SECRET_KEY: "${LAKE_SECRET}"}})
    assert spark_conf(config)[SPARK_SECRET_KEY] == "${LAKE_SECRET}"
    assert "s3cr3t-value" not in repr(config.redacted()) + repr(config)
    seen = []

    @dg.asset
    def probe(pyspark: PySparkResource) -> None:
        seen.append(pyspark.spark_session.conf.get(SPARK_SECRET_KEY))

    with dg.instance_for_test() as instance:
        result = dg.materialize([probe], resources={"pyspark": build_pyspark(config)}, instance=instance)
        stored = serialize_value(instance.get_job_snapshot(instance.get_run_by_id(result.run_id).job_snapshot_id))
    assert seen == ["s3cr3t-value"]
    assert "${LAKE_SECRET}" in stored and "s3cr3t-value" not in stored
    monkeypatch.delenv("LAKE_SECRET")
    with pytest.raises(ConfigError, match="LAKE_SECRET, which is not set"):
        parse_config({"spark": {"conf": {SPARK_SECRET_KEY: "${LAKE_SECRET}"}}})


def test_spark_settings_pin_utc_and_readable_parquet():
    conf = spark_conf(
        parse_config(
            {
                "spark": {
                    "master": "spark://host:7077",
                    "shuffle_partitions": 16,
                    "conf": {"spark.executor.memory": "4g", "spark.driver.extraJavaOptions": "-Xss4m"},
                }
            }
        )
    )
    assert conf["spark.driver.extraJavaOptions"] == "-Xss4m -Duser.timezone=UTC"
    assert conf["spark.executor.extraJavaOptions"] == "-Duser.timezone=UTC"
    tokyo = spark_conf(
        parse_config({"spark": {"conf": {"spark.driver.extraJavaOptions": "-Duser.timezone=Asia/Tokyo"}}})
    )
    assert tokyo["spark.driver.extraJavaOptions"] == "-Duser.timezone=Asia/Tokyo"
    assert conf["spark.master"] == "spark://host:7077"
    assert conf["spark.sql.session.timeZone"] == "UTC"
    assert "-Duser.timezone=UTC" in conf["spark.driver.extraJavaOptions"]
    assert conf["spark.sql.shuffle.partitions"] == "16"
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert conf["spark.executor.memory"] == "4g"


LOOPBACK_PROBE = """
import ipaddress, json, os, sys
from batch_platform.config import parse_config
from batch_platform.session import build_session, spark_conf

assert "SPARK_LOCAL_IP" not in os.environ and "pandera" not in sys.modules  # pandera.pyspark would set it


def children():
    for entry in os.listdir("/proc"):
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == os.getpid():
            yield int(entry)


def address(hex_address):
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    ip = ipaddress.IPv6Address(b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4)))
    return ip.ipv4_mapped or ip


def listening(pid):
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in open(table).readlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                host, port = fields[1].split(":")
                yield str(address(host)), int(port, 16)


spark = build_session(spark_conf(parse_config({"spark": {"master": "local[1]", "ui_enabled": True}}, "probe")))
sockets = [socket for pid in children() for socket in listening(pid)]
print(json.dumps({"ui": spark.sparkContext.uiWebUrl, "sockets": sockets}))
spark.stop()
"""


def test_a_local_session_listens_on_loopback_only(tmp_path):
    """A local session's JVM (driver RPC, block manager, Spark UI) binds to 127.0.0.1 whatever the
    environment holds: started here from the session module alone, without pandera (whose
    `pandera.pyspark` happens to set `SPARK_LOCAL_IP` when imported) and without `SPARK_LOCAL_IP`."""
    import json
    import os
    import subprocess
    import sys
    from urllib.parse import urlsplit

    env = {k: v for k, v in os.environ.items() if k != "SPARK_LOCAL_IP"}
    done = subprocess.run(
        [sys.executable, "-c", LOOPBACK_PROBE], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    sockets = {(host, port) for host, port in found["sockets"]}
    ui = urlsplit(found["ui"])
    assert len(sockets) >= 3 and ("127.0.0.1", ui.port) in sockets, found  # RPC, block manager, UI
    assert {host for host, _ in sockets} == {"127.0.0.1"}, found


def test_a_missing_or_malformed_file_is_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("storage: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_config(bad)


PACKAGE = Path(__file__).resolve().parents[1] / "batch_platform"


def _module_imports() -> dict[str, set[str]]:
    """Each module of the package -> the package modules it imports at module level."""
    import ast

    modules = {
        ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): path
        for path in PACKAGE.rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.parse(path.read_text()).body:  # module level only: imports inside functions are lazy
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("batch_platform"):
                found |= {
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                    for a in node.names
                }
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("batch_platform")}
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def test_the_package_has_no_import_cycle():
    graph = _module_imports()
    assert "batch_platform.config" in graph and graph["batch_platform.assets.gold"]
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for dep in sorted(graph[module]):
            assert state.get(dep) != "open", f"import cycle: {' -> '.join([*path, module, dep])}"
            if dep not in state:
                visit(dep, [*path, module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_importing_every_module_reads_no_config_file(tmp_path):
    """With BATCH_PLATFORM_CONFIG naming a file that does not exist, every module imports, and
    `load_training_set` reads a lake given by its root; without a root it says what to set."""
    import os
    import subprocess
    import sys

    import pandas as pd

    lake = tmp_path / "lake"
    write_quarters(lake, "gold/training_set", pd.DataFrame({"customer_id": ["C1"], "label": [1], "quarter": "2025-Q4"}))
    modules = sorted(_module_imports())
    probe = "\n".join(
        [
            "import importlib, batch_platform",
            f"for name in {modules!r}: importlib.import_module(name)",
            f"frame = batch_platform.load_training_set('2025-Q4', lake_root={str(lake)!r})",
            "print('rows', len(frame), list(frame['quarter']))",
            "try:",
            "    batch_platform.load_training_set('2025-Q4')",
            "except Exception as exc:",
            "    print('error', type(exc).__name__, exc)",
        ]
    )
    env = {**os.environ, "BATCH_PLATFORM_CONFIG": str(tmp_path / "missing.yaml")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rows 1 ['2025-Q4']" in done.stdout
    assert "error ConfigError load_training_set needs to know where the lake is: pass lake_root=" in done.stdout
    assert "BATCH_PLATFORM_CONFIG" in done.stdout and "missing.yaml does not exist" in done.stdout


def test_an_mlflow_uri_with_a_password_is_refused_without_showing_it():
    with pytest.raises(ConfigError) as error:
        parse_config({"mlflow": {"tracking_uri": "https://ml:pa55word@mlflow.internal"}}, "cfg.yaml")
    message = str(error.value)
    assert "mlflow.tracking_uri" in message and "MLFLOW_TRACKING_PASSWORD" in message
    assert "pa55word" not in message and "mlflow.internal" in message
    config = parse_config({"mlflow": {"tracking_uri": "https://mlflow.internal"}})
    assert config.mlflow_tracking_uri == "https://mlflow.internal"


def _project(root: Path, config: str) -> Path:
    """A project folder as the repository lays it out: `config/config.yaml` beside `data/`."""
    (root / "config").mkdir(parents=True)
    (root / "config" / "config.yaml").write_text(config)
    return root


def test_relative_paths_resolve_against_the_config_files_folder_so_a_copied_project_is_self_contained(
    tmp_path, monkeypatch, capsys
):
    import shutil

    import pandas as pd

    from batch_platform.cli import main
    from batch_platform.consume import load_training_set

    original = _project(tmp_path / "original", "storage:\n  landing_root: ../data/landing\n  lake_root: ../data/lake\n")
    copy = Path(shutil.copytree(original, tmp_path / "elsewhere" / "copy"))
    monkeypatch.chdir(original)  # the working directory plays no part
    config = load_config(copy / "config" / "config.yaml")
    assert config.landing_root == str(copy / "data" / "landing")
    assert config.lake_root == str(copy / "data" / "lake")
    assert config.mlflow_tracking_uri == f"sqlite:///{copy / 'data'}/mlflow.db"
    assert config.mlflow_artifact_location == str(copy / "data" / "mlartifacts")

    monkeypatch.setenv("BATCH_PLATFORM_CONFIG", str(copy / "config" / "config.yaml"))
    assert main(["sample-data", "--from", "2024-Q1", "--customers", "5"]) == 0
    assert (copy / "data" / "landing" / "operational").is_dir()
    assert not (original / "data").exists() and not (original / "config" / "data").exists()
    frame = pd.DataFrame({"customer_id": ["C1"], "label": [1], "quarter": "2024-Q1"})
    write_quarters(copy / "data" / "lake", "gold/training_set", frame)
    assert list(load_training_set("2024-Q1")["customer_id"]) == ["C1"]


def test_the_local_mlflow_store_follows_the_config_file_when_the_lake_is_not_a_local_folder(tmp_path):
    on_s3 = _project(tmp_path / "s3", "storage:\n  lake_root: s3a://lake/lake\n")
    assert load_config(on_s3 / "config" / "config.yaml").data_root == str(on_s3 / "config" / "data")
    chosen = _project(tmp_path / "chosen", "storage:\n  lake_root: s3a://lake/lake\nmlflow:\n  local_dir: ../store\n")
    config = load_config(chosen / "config" / "config.yaml")
    assert config.mlflow_tracking_uri == f"sqlite:///{chosen / 'store'}/mlflow.db"
    assert "batch_platform/data" not in config.mlflow_tracking_uri


def test_a_config_without_a_file_resolves_against_the_working_directory_when_parsed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = parse_config({"storage": {"lake_root": "lake", "landing_root": "/abs/landing"}}, "test")
    monkeypatch.chdir("/")
    assert config.lake_root == str(tmp_path / "lake")
    assert config.landing_root == "/abs/landing"
    with pytest.raises(ConfigError, match="unknown key 'base_dir'"):
        parse_config({"base_dir": "/elsewhere"}, "cfg.yaml")


def test_the_shipped_configs_keep_the_projects_data_folder():
    project = Path(__file__).resolve().parents[1]
    shipped = load_config(DEFAULT_CONFIG_PATH)
    assert shipped.storage.lake_root == "../data/lake" and shipped.storage.landing_root == "../data/landing"
    assert shipped.landing_root == str(project / "data" / "landing")
    assert shipped.mlflow_tracking_uri == f"sqlite:///{project / 'data'}/mlflow.db"


def test_the_delta_retention_is_optional_with_a_year_of_models_and_a_month_by_default():
    assert parse_config({}, "test").storage.delta.retention_days == 400
    assert parse_config({"storage": {"delta": {"retention_days": 30}}}, "t").storage.delta.retention_days == 30
    with pytest.raises(ConfigError) as short:
        parse_config({"storage": {"delta": {"retention_days": 3}}}, "cfg.yaml")
    assert "key 'storage.delta.retention_days' has bad value 3" in str(short.value)
    with pytest.raises(ConfigError, match="unknown key 'storage.delta.retention'"):
        parse_config({"storage": {"delta": {"retention": 30}}}, "cfg.yaml")
