"""`storage.s3` in the config file (SPEC.md, "Storage on S3"): credentials only as `${NAME}`, never
shown; the S3A jars added to the session for an `s3a://` root; the shipped S3 example loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from batch_platform import delta
from batch_platform.config import PROJECT_ROOT, ConfigError, load_config, parse_config
from batch_platform.delta_spark import delta_jars
from batch_platform.s3 import hadoop_s3a_settings, hadoop_version, s3a_jars
from batch_platform.session import spark_conf

S3 = {
    "endpoint_url": "http://127.0.0.1:9",
    "region": "eu-west-1",
    "path_style_access": True,
}


def test_a_literal_credential_is_refused_without_being_echoed():
    raw = {
        "storage": {
            "s3": {
                **S3,
                "access_key_id": "AKIAEXAMPLE",
                "secret_access_key": "hunter2-secret",
            }
        }
    }
    with pytest.raises(ConfigError) as error:
        parse_config(raw)
    message = str(error.value)
    assert "key 'storage.s3.secret_access_key' has bad value ***: write a credential as ${NAME}" in message
    assert "hunter2-secret" not in message and "AKIAEXAMPLE" not in message


def test_an_unset_credential_variable_is_named(monkeypatch):
    monkeypatch.delenv("BP_UNSET_SECRET", raising=False)
    monkeypatch.setenv("BP_KEY", "k")
    raw = {
        "storage": {
            "s3": {
                **S3,
                "access_key_id": "${BP_KEY}",
                "secret_access_key": "${BP_UNSET_SECRET}",
            }
        }
    }
    with pytest.raises(ConfigError, match="environment variable BP_UNSET_SECRET is not set"):
        parse_config(raw)


def test_credentials_stay_references_and_reach_s3a_as_values(monkeypatch):
    monkeypatch.setenv("BP_KEY", "the-key")
    monkeypatch.setenv("BP_SECRET", "the-secret-value")
    raw = {
        "storage": {
            "s3": {
                **S3,
                "access_key_id": "${BP_KEY}",
                "secret_access_key": "${BP_SECRET}",
            }
        }
    }
    config = parse_config(raw)
    assert config.storage.s3.secret_access_key == "${BP_SECRET}"
    assert "the-secret-value" not in str(config.redacted()) + repr(config)
    settings = hadoop_s3a_settings("http://127.0.0.1:9", "eu-west-1", True, "the-key", "the-secret-value")
    assert settings["fs.s3a.endpoint"] == "http://127.0.0.1:9"
    assert settings["fs.s3a.connection.ssl.enabled"] == "false"
    assert settings["fs.s3a.path.style.access"] == "true"
    assert settings["fs.s3a.endpoint.region"] == "eu-west-1"
    assert settings["fs.s3a.secret.key"] == "the-secret-value"


def test_every_session_gets_the_delta_jars_and_an_s3a_root_the_s3a_ones_too(monkeypatch):
    assert hadoop_version() == "3.4.2"  # the Hadoop inside the pinned pyspark 4.1.1
    jars = s3a_jars()
    assert f"org.apache.hadoop_hadoop-aws-{hadoop_version()}.jar" in [jar.name for jar in jars]
    assert any(jar.name.startswith("software.amazon.awssdk_bundle-") for jar in jars)
    delta = [str(jar) for jar in delta_jars()]
    assert [Path(jar).name for jar in delta] == [
        "io.delta_delta-spark_4.1_2.13-4.3.1.jar",
        "io.delta_delta-storage-4.3.1.jar",
    ]
    local = parse_config({"storage": {"lake_root": "/tmp/lake"}, "spark": {"master": "local[2]"}})
    conf = spark_conf(local)
    assert conf["spark.driver.extraClassPath"].split(":") == delta and "spark.jars" not in conf
    assert conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    on_s3 = parse_config({"storage": {"lake_root": "s3a://lake/lake"}, "spark": {"master": "local[2]"}})
    assert spark_conf(on_s3)["spark.driver.extraClassPath"].split(":") == delta + [str(jar) for jar in jars]
    cluster = parse_config(
        {
            "storage": {"landing_root": "s3a://l/l"},
            "spark": {"master": "spark://127.0.0.1:7077"},
        }
    )
    assert spark_conf(cluster)["spark.jars"].split(",") == delta + [str(jar) for jar in jars]
    monkeypatch.setattr("batch_platform.s3.JARS_DIR", PROJECT_ROOT / "no-such-folder")
    with pytest.raises(RuntimeError, match="run `make setup`"):
        spark_conf(on_s3)
    monkeypatch.setattr("batch_platform.delta_spark.DELTA_JARS_DIR", PROJECT_ROOT / "no-such-folder")
    with pytest.raises(RuntimeError, match="Delta Lake jars .* run `make setup`"):
        spark_conf(local)


def test_the_shared_session_writes_delta_and_reads_every_version_back(spark, tmp_path):
    """Delta's SQL extension and catalog are live: a partition overwrite is one commit, and the
    previous version stays readable (by Spark and by the `deltalake` package, without Spark)."""
    from deltalake import DeltaTable

    path = str(tmp_path / "table")
    first = spark.createDataFrame([("a", "2024-Q1"), ("b", "2024-Q2")], "id string, quarter string")
    first.write.format("delta").partitionBy("quarter").save(path)
    second = spark.createDataFrame([("c", "2024-Q2")], "id string, quarter string")
    second.write.format("delta").mode("overwrite").option("replaceWhere", "quarter = '2024-Q2'").save(path)
    now = {tuple(row) for row in spark.read.format("delta").load(path).collect()}
    assert now == {("a", "2024-Q1"), ("c", "2024-Q2")}
    before = {tuple(row) for row in spark.read.format("delta").option("versionAsOf", 0).load(path).collect()}
    assert before == {("a", "2024-Q1"), ("b", "2024-Q2")}
    assert DeltaTable(path).version() == 1
    for version, ids in ((None, ["a", "c"]), (0, ["a", "b"])):
        table = delta.open_table(path, version=version)
        rows = [
            *delta.read_quarter(table, "2024-Q1")["id"].to_pylist(),
            *delta.read_quarter(table, "2024-Q2")["id"].to_pylist(),
        ]
        assert sorted(rows) == ids


def test_the_shipped_s3_cluster_example_loads(monkeypatch):
    monkeypatch.setenv("S3_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "s")
    config = load_config(PROJECT_ROOT / "config" / "s3-cluster.example.yaml")
    assert config.lake_root == "s3a://lake/lake"
    assert config.spark.master == "spark://127.0.0.1:7077"
    assert config.storage.s3.access_key_id == "${S3_ACCESS_KEY_ID}"
