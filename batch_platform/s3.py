"""Everything S3 in one place: the S3A jars, and `storage.s3` applied to every S3 client.

SPEC.md ("Storage on S3"): a root may be `s3a://bucket/prefix`, and `storage.s3` (endpoint, region,
path-style access, credentials written `${NAME}`) applies to Spark and to every other S3 client:

- Spark: `s3a_jars_needed` names the fetched S3A jars (local paths: no run downloads anything) a
  session whose landing or lake root is `s3a://` puts on its class path
  (`session.spark_conf`); `hadoop_s3a_settings` is what the `pyspark` resource sets on the
  session's Hadoop configuration when a run starts (credentials included, read from the
  environment then, so they never enter Dagster's resource config or run storage);
- boto3 (the sensor, dagster-aws's `S3Resource`): `s3_resource`, `boto3_client`;
- delta-rs (`load_training_set`, `batch-platform report`/`history`, the datasets API, the publisher):
  `batch_platform.delta.storage_options`.
"""

from __future__ import annotations

import os
import re
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlparse

from pyarrow import fs

from batch_platform.config import PROJECT_ROOT, PlatformConfig, S3Config
from batch_platform.env_refs import env_name, env_value
from batch_platform.layout import bucket_of, is_s3

JARS_DIR = PROJECT_ROOT / ".jars"
_HADOOP_JAR = re.compile(r"^hadoop-client-api-(\d+\.\d+\.\d+)\.jar$")


def hadoop_version() -> str:
    """The Hadoop version bundled with the installed pyspark (its hadoop-client-api jar), found
    without importing pyspark."""
    jars = Path(find_spec("pyspark").origin).parent / "jars"
    for jar in jars.glob("hadoop-client-api-*.jar"):
        if m := _HADOOP_JAR.match(jar.name):
            return m.group(1)
    raise RuntimeError(f"no hadoop-client-api jar in {jars}: cannot tell which hadoop-aws matches")


def s3a_jars() -> list[Path]:
    """The fetched hadoop-aws jar of the bundled Hadoop version and its dependencies (the AWS SDK
    bundle among them); empty when not fetched (`make setup` runs `scripts/fetch_jars.py`)."""
    folder = JARS_DIR / "ivy" / "jars"
    if not (folder / f"org.apache.hadoop_hadoop-aws-{hadoop_version()}.jar").exists():
        return []
    return sorted(folder.glob("*.jar"))


def s3a_jars_needed(config: PlatformConfig) -> list[Path]:
    """The S3A jars a session needs: the fetched ones when the landing or lake root is `s3a://`,
    none when both are local; a clear error when they are missing, rather than Spark's
    `ClassNotFoundException: S3AFileSystem` mid-run."""
    if not (is_s3(config.storage.landing_root) or is_s3(config.storage.lake_root)):
        return []
    jars = s3a_jars()
    if not jars:
        raise RuntimeError(
            f"a root is on S3 but the S3A jars (hadoop-aws {hadoop_version()} and the AWS SDK) are not in "
            f"{JARS_DIR}: run `make setup` (or `python scripts/fetch_jars.py`) once"
        )
    return jars


def hadoop_s3a_settings(
    endpoint_url: str | None,
    region: str | None,
    path_style_access: bool,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
) -> dict[str, str]:
    """`fs.s3a.*` Hadoop settings for `storage.s3`; credentials are values, not references."""
    settings = {"fs.s3a.path.style.access": str(path_style_access).lower()}
    if endpoint_url:
        settings["fs.s3a.endpoint"] = endpoint_url
        settings["fs.s3a.connection.ssl.enabled"] = str(endpoint_url.startswith("https://")).lower()
    if region:
        settings["fs.s3a.endpoint.region"] = region
    if access_key_id and secret_access_key:
        settings["fs.s3a.aws.credentials.provider"] = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        settings["fs.s3a.access.key"] = access_key_id
        settings["fs.s3a.secret.key"] = secret_access_key
    return settings


def access_error(path: str, exc: BaseException) -> str:
    """A one-paragraph explanation of a failed access to `path`, naming its bucket on S3. The Java
    stack trace is left out (py4j puts it in the message); the S3 error's first line is kept."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    cause = next(
        (line for line in lines if "Exception" in line and ":" in line),
        lines[0] if lines else repr(exc),
    )
    if not is_s3(path):
        return f"cannot read {path}: {cause}"
    hint = ""
    if any(
        word in cause
        for word in (
            "403",
            "AccessDenied",
            "SignatureDoesNotMatch",
            "InvalidAccessKeyId",
        )
    ):
        hint = (
            "access was denied: check the credentials (the environment variables that storage.s3's "
            "access_key_id and secret_access_key name), the endpoint and the region. "
        )
    return f"cannot read {path} in bucket '{bucket_of(path)}': {hint}S3 said: {cause}"


def boto3_client(s3: S3Config | None):
    """A boto3 S3 client configured from `storage.s3` (credentials read from the environment now)."""
    # Start-up time: boto3 loads only for the datasets API of a lake on S3 (importing the definitions never does).
    import boto3
    from botocore.config import Config

    s3 = s3 or S3Config()
    return boto3.client(
        "s3",
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=env_value(s3.access_key_id),
        aws_secret_access_key=env_value(s3.secret_access_key),
        # SigV4 for presigned urls: boto3 may otherwise presign with SigV2, which S3 servers refuse.
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path" if s3.path_style_access else "auto"},
        ),
    )


def s3_resource(s3: S3Config | None):
    """dagster-aws's `S3Resource` for `storage.s3`. The credentials are `dg.EnvVar`s: the UI and the
    run storage show the variables' names, never their values. (With a custom endpoint boto3
    addresses buckets by path, as `path_style_access` asks.)"""
    # Start-up time: dagster-aws (over a second) loads only for a platform on S3, and Dagster with it
    # (`batch_platform.delta`, the reader without Spark, imports this module and loads no Dagster).
    import dagster as dg
    from dagster_aws.s3 import S3Resource

    s3 = s3 or S3Config()
    key, secret = env_name(s3.access_key_id), env_name(s3.secret_access_key)
    return S3Resource(
        endpoint_url=s3.endpoint_url,
        region_name=s3.region,
        aws_access_key_id=dg.EnvVar(key) if key else None,
        aws_secret_access_key=dg.EnvVar(secret) if secret else None,
    )


def pyarrow_filesystem(uri: str, s3: S3Config | None):
    """pyarrow's own file system for a lake table's files and the table's path inside it: the local
    file system for a folder; for `s3a://`, pyarrow's S3 client configured from `storage.s3` (the
    credentials read from the variables it names, now). Delta data files are never rewritten, so
    pyarrow's ranged reads of one object cannot mix two writes."""
    if "://" not in uri:
        return fs.LocalFileSystem(), os.path.abspath(uri)
    if not is_s3(uri):
        return fs.FileSystem.from_uri(uri)
    s3 = s3 or S3Config()
    options: dict = {"force_virtual_addressing": not s3.path_style_access}
    if s3.region:
        options["region"] = s3.region
    if s3.endpoint_url:
        parsed = urlparse(s3.endpoint_url)
        options.update(endpoint_override=parsed.netloc, scheme=parsed.scheme or "https")
    if s3.access_key_id:
        options.update(access_key=env_value(s3.access_key_id), secret_key=env_value(s3.secret_access_key))
    parsed = urlparse(uri)
    return fs.S3FileSystem(**options), f"{parsed.netloc}{parsed.path}".rstrip("/")
