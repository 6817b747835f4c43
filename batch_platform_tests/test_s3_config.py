"""`storage.s3` in the config file (SPEC.md, "Storage on S3"): credentials only as `${NAME}`, never
shown; the S3A jars added to the session for an `s3a://` root; the shipped S3 example loads."""

from __future__ import annotations

import pytest

from batch_platform.config import PROJECT_ROOT, ConfigError, load_config, parse_config
from batch_platform.s3 import hadoop_s3a_settings, hadoop_version, s3a_jars

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


def test_an_s3a_root_adds_the_fetched_jars_and_a_local_one_does_not(monkeypatch):
    assert hadoop_version() == "3.5.0"  # pyspark 4.3's bundled Hadoop
    jars = s3a_jars()
    assert f"org.apache.hadoop_hadoop-aws-{hadoop_version()}.jar" in [jar.name for jar in jars]
    assert any(jar.name.startswith("software.amazon.awssdk_bundle-") for jar in jars)
    local = parse_config({"storage": {"lake_root": "/tmp/lake"}})
    assert not {"spark.jars", "spark.driver.extraClassPath"} & set(local.spark_conf())
    on_s3 = parse_config({"storage": {"lake_root": "s3a://lake/lake"}, "spark": {"master": "local[2]"}})
    assert on_s3.spark_conf()["spark.driver.extraClassPath"].split(":") == [str(jar) for jar in jars]
    cluster = parse_config(
        {
            "storage": {"landing_root": "s3a://l/l"},
            "spark": {"master": "spark://127.0.0.1:7077"},
        }
    )
    assert cluster.spark_conf()["spark.jars"].split(",") == [str(jar) for jar in jars]
    monkeypatch.setattr("batch_platform.s3.JARS_DIR", PROJECT_ROOT / "no-such-folder")
    with pytest.raises(RuntimeError, match="run `make setup`"):
        on_s3.spark_conf()


def test_the_shipped_s3_cluster_example_loads(monkeypatch):
    monkeypatch.setenv("S3_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("S3_SECRET_ACCESS_KEY", "s")
    config = load_config(PROJECT_ROOT / "config" / "s3-cluster.example.yaml")
    assert config.lake_root == "s3a://lake/lake"
    assert config.spark.master == "spark://127.0.0.1:7077"
    assert config.storage.s3.access_key_id == "${S3_ACCESS_KEY_ID}"
