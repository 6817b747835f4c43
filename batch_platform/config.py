"""Loading and validating the platform's one YAML config file (SPEC.md, "Configuration").

The file is read once, by whoever builds the `Definitions` (or runs a CLI command), and the
`PlatformConfig` is passed down to the builders; importing a module never reads it.

`BATCH_PLATFORM_CONFIG` selects the file (default `config/config.yaml` in the project). Unknown
keys and bad values fail at load with the key and the value named, so a typo never silently falls
back to a default. Secrets never live in the file: a value written `${NAME}` is read from the
environment variable NAME. Where a secret may be written (`spark.conf`, `storage.s3`,
`publish.postgres.dsn`) the reference is kept as written and resolved only where a client or the
Spark session is built, so the config, the resource config Dagster stores (run storage, the UI) and
every log hold the variable's name, never its value; elsewhere it is resolved when the file is loaded.

A relative path in the file (`storage.landing_root`, `storage.lake_root`, `mlflow.local_dir`)
resolves against the folder of the file itself, never against the package or the working
directory: a project folder copied elsewhere, config and data together, reads and writes its own
data (the shipped `config/config.yaml` says `../data/lake`). A config parsed from a dict, with no
file (`parse_config(raw, "test")`), resolves against the working directory at the time it is parsed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import ConfigDict, Field, ValidationError, field_validator, model_validator

from batch_platform.config_sections import (
    BatchConfig,
    ChecksConfig,
    CustomersConfig,
    MlConfig,
    MonitoringConfig,
    Section,
)
from batch_platform.env_refs import check_dsn_template, env_name, expand_env_refs, unset_names

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG_PATH = PROJECT_ROOT / "config" / "config.yaml"
CONFIG_ENV_VAR = "BATCH_PLATFORM_CONFIG"

UTC_NAMES = ("UTC", "Etc/UTC", "Z", "+00:00")
_KEPT_AS_REFERENCE = {"storage.s3.access_key_id", "storage.s3.secret_access_key", "publish.postgres.dsn", "spark.conf"}
"""Keys kept as written (`${NAME}` references and all) and resolved only where a client or the Spark
session is built, so the config, the Dagster UI (resource config) and run storage never hold the secret."""
_SET_BY_LOADER = {"source_path", "base_dir"}
"""`PlatformConfig` fields the loader fills in, never read from the file."""
_SECRET_HINTS = ("secret", "password", "token", "access.key", "credential")


LOCAL_UI_PORT = 5000
"""The port `batch-platform mlflow-ui` serves a local MLflow store's UI on, and its run links name."""


class ConfigError(ValueError):
    """The config file is missing, malformed, or has an unknown key or a bad value."""


class S3Config(Section):
    """`storage.s3` (SPEC.md, "Storage on S3"), applied to Spark's S3A and every other S3 client by
    `batch_platform.s3`. The credentials stay written `${NAME}` (`batch_platform.env_refs`): only the variable's name is kept,
    and its value is read from the environment where a client is built, so it never sits in the
    config, the Dagster UI or run storage. Without credentials the AWS default chain applies."""

    endpoint_url: str | None = None
    region: str | None = None
    path_style_access: bool = False
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @field_validator("access_key_id", "secret_access_key")
    @classmethod
    def _env_reference(cls, value: str | None) -> str | None:
        if value is None:
            return None
        name = env_name(value)
        if name is None:
            raise ValueError("write a credential as ${NAME} (an environment variable), never its value")
        if name not in os.environ:
            raise ValueError(f"environment variable {name} is not set")
        return value.strip()

    @model_validator(mode="after")
    def _pair(self) -> S3Config:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give both access_key_id and secret_access_key, or neither (AWS default chain)")
        return self


DEFAULT_RETENTION_DAYS = 400
"""`storage.delta.retention_days` when not set. A model of quarter Q is trained when Q ends and is
read back (its exact training rows, by Delta version) for as long as it may still be audited,
compared or served: a year of models is the four quarters before the newest one. A version stays
readable until `retention_days` after it was superseded, so 400 days keeps every version any model
of the past year learned from (365 days) plus a month for a late quarterly run or a backfill."""


class DeltaConfig(Section):
    """`storage.delta` (SPEC.md, "Lake"): how long the lake keeps the history of its Delta tables.
    `retention_days` governs `VACUUM` (files no longer part of the table are deleted only this long
    after they were replaced) and the log kept for time travel; readers name it when a version they
    ask for is gone. At least 7 days: Delta refuses a shorter VACUUM retention (a running reader or
    writer could lose its files)."""

    retention_days: int = Field(DEFAULT_RETENTION_DAYS, ge=7, le=36500)


class StorageConfig(Section):
    landing_root: str = "data/landing"
    lake_root: str = "data/lake"
    s3: S3Config | None = None
    delta: DeltaConfig = DeltaConfig()


class PostgresPublishConfig(Section):
    """`publish.postgres` (SPEC.md, "Delivery"). `dsn` is a libpq URL or key=value string whose
    password, if any, is written `${NAME}`: it is checked at load and read from the environment
    only when a connection is made (`env_refs.connection_parameters`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dsn: str
    db_schema: str = Field("public", alias="schema", pattern=r"^[a-z_][a-z0-9_]{0,62}$")

    @field_validator("dsn")
    @classmethod
    def _password_from_environment(cls, dsn: str) -> str:
        check_dsn_template(dsn)
        missing = unset_names(dsn)
        if missing:
            raise ValueError(f"it refers to environment variable(s) {', '.join(missing)}, which are not set")
        return dsn


class PublishConfig(Section):
    postgres: PostgresPublishConfig | None = None


class SparkConfig(Section):
    master: str = "local[*]"
    app_name: str = "batch_platform"
    shuffle_partitions: int = Field(8, ge=1)
    ui_enabled: bool = True
    conf: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @field_validator("conf")
    @classmethod
    def _references_set(cls, conf: dict[str, Any]) -> dict[str, Any]:
        for key, value in conf.items():
            for name in unset_names(str(value)):
                raise ValueError(f"{key} refers to environment variable {name}, which is not set")
        return conf

    @field_validator("conf")
    @classmethod
    def _utc_only(cls, conf: dict[str, Any]) -> dict[str, Any]:
        zone = conf.get("spark.sql.session.timeZone")
        if zone is not None and expand_env_refs(str(zone)) not in UTC_NAMES:
            raise ValueError(
                f"spark.sql.session.timeZone must be UTC: quarters and timestamps are UTC (SPEC.md), got {zone!r}"
            )
        return conf


class MlflowConfig(Section):
    """Where the churn models are tracked and registered (SPEC.md, "ML"). Without `tracking_uri`
    the store is local: `sqlite:///<data>/mlflow.db` with artifacts in `<data>/mlartifacts`, so
    nothing needs starting; an `http(s)://` URI points at a server. `<data>` is `local_dir` when
    given (relative to the config file's folder), else the lake's parent folder, or, when the lake
    is not a local folder, `data` beside the config file (`PlatformConfig.data_root`)."""

    tracking_uri: str | None = None
    local_dir: str | None = None
    registered_model_name: str = Field("batch_platform_churn", min_length=1)
    experiment_name: str = Field("batch_platform_churn", min_length=1)

    @field_validator("tracking_uri")
    @classmethod
    def _no_password(cls, uri: str | None) -> str | None:
        """The URI is shown in the UI (resource config), links and logs: a password in it would
        leak there. MLflow reads a server's credentials from its own environment variables."""
        if uri and urlsplit(uri).password:
            raise ValueError(
                "it holds a password: write the URI without credentials and set MLFLOW_TRACKING_USERNAME and "
                "MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment, where MLflow reads them"
            )
        return uri


class ApiConfig(Section):
    """`api`: the datasets API of `batch-platform serve` (SPEC.md, "Delivery"). `public_url` is what
    its file urls start with, the address clients reach it at (`https://data.example.com`, with the
    path a reverse proxy serves it under if any); without it (and without `serve --public-url`),
    `http://<host>:<port>` of the address it binds. Never the request's Host header, which the
    client writes."""

    public_url: str | None = None

    @field_validator("public_url")
    @classmethod
    def _base_url(cls, url: str | None) -> str | None:
        return public_base_url(url) if url is not None else None


class PlatformConfig(Section):
    storage: StorageConfig = StorageConfig()
    batch: BatchConfig = BatchConfig()
    checks: ChecksConfig = ChecksConfig()
    monitoring: MonitoringConfig = MonitoringConfig()
    spark: SparkConfig = SparkConfig()
    publish: PublishConfig = PublishConfig()
    mlflow: MlflowConfig = MlflowConfig()
    ml: MlConfig = MlConfig()
    api: ApiConfig = ApiConfig()
    customers: CustomersConfig = CustomersConfig()
    source_path: str | None = None
    base_dir: str | None = None
    """The folder relative paths resolve against: the config file's, or the working directory at
    parse time for a config with no file (`parse_config`); None only for a `PlatformConfig` built
    directly, which then resolves against the working directory of the moment."""

    def resolve_path(self, path: str) -> str:
        """A relative local path resolved against the config file's folder (`base_dir`): a copied
        project reads and writes its own folder. Absolute paths and URIs (s3a://…) pass through."""
        if "://" in path or os.path.isabs(path):
            return path
        return str((Path(self.base_dir or os.getcwd()) / path).resolve())

    @property
    def landing_root(self) -> str:
        return self.resolve_path(self.storage.landing_root)

    @property
    def lake_root(self) -> str:
        return self.resolve_path(self.storage.lake_root)

    @property
    def data_root(self) -> str:
        """The local folder that holds the local MLflow store: `mlflow.local_dir` when given, else
        the lake's parent folder, or `data` beside the config file when the lake is not a local
        folder (never the package's folder: a copied project keeps its own store)."""
        if self.mlflow.local_dir:
            return self.resolve_path(self.mlflow.local_dir)
        if "://" in self.lake_root:
            return self.resolve_path("data")
        return str(Path(self.lake_root).parent)

    @property
    def mlflow_tracking_uri(self) -> str:
        return self.mlflow.tracking_uri or f"sqlite:///{self.data_root}/mlflow.db"

    @property
    def mlflow_artifact_location(self) -> str | None:
        """Where a new experiment keeps its artifacts: `<data>/mlartifacts`, unless the tracking URI
        is a server (`http(s)://`), which decides for itself."""
        if self.mlflow_tracking_uri.startswith(("http://", "https://")):
            return None
        return str(Path(self.data_root) / "mlartifacts")

    def redacted(self) -> dict[str, Any]:
        """The config as a dict, safe to print or log."""
        data = self.model_dump()
        data["spark"]["conf"] = {
            key: ("***" if _looks_secret(key) else value) for key, value in self.spark.conf.items()
        }
        return data


def shown_uri(uri: str) -> str:
    """`uri` without a `user:password@` part, fit for a log, the metadata or the terminal."""
    parts = urlsplit(uri)
    if not parts.netloc or "@" not in parts.netloc:
        return uri
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def public_base_url(url: str) -> str:
    """`url` without its trailing `/`, if it is an `http(s)://host[:port][/path]` with no user,
    password, query or fragment (`api.public_url`, `serve --public-url`); else ValueError."""
    parts = urlsplit(url.strip())
    try:
        port_ok = parts.port is None or parts.port > 0
    except ValueError:  # not a number, or out of range
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError(f"{shown_uri(url)!r} is not an http(s):// URL with a host, e.g. https://data.example.com")
    if "@" in parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"{shown_uri(url)!r} must hold no user, password, query or fragment: it starts every file url")
    return urlunsplit(parts).rstrip("/")


def _looks_secret(key: str) -> bool:
    return any(hint in key.lower() for hint in _SECRET_HINTS)


def _expand_env(node: Any, where: str) -> Any:
    if where in _KEPT_AS_REFERENCE:
        return node
    if isinstance(node, dict):
        return {key: _expand_env(value, f"{where}.{key}" if where else str(key)) for key, value in node.items()}
    if isinstance(node, str) and (name := env_name(node)):
        if name not in os.environ:
            raise ConfigError(f"config key '{where}' refers to environment variable {name}, which is not set")
        return os.environ[name]
    return node


def _describe(error: ValidationError, raw: dict[str, Any], source: str) -> str:
    lines = [f"invalid config {source}:"]
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"])
        value: Any = raw
        for part in item["loc"]:
            value = value.get(part) if isinstance(value, dict) else None
        if item["type"] == "extra_forbidden":
            lines.append(f"  - unknown key '{key}'")
        else:
            if _looks_secret(key) or key in _KEPT_AS_REFERENCE:
                shown = "***"
            else:
                shown = repr(shown_uri(value) if isinstance(value, str) else value)
            message = item["msg"].removeprefix("Value error, ")
            lines.append(f"  - key '{key}' has bad value {shown}: {message}")
    return "\n".join(lines)


def parse_config(
    raw: dict[str, Any] | None, source: str = "<dict>", base_dir: str | os.PathLike[str] | None = None
) -> PlatformConfig:
    """Validate `raw`, read from `source` (a file name or a label, for messages). Relative paths
    resolve against `base_dir` (`load_config` passes the file's folder), else the working directory
    now."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError(f"invalid config {source}: the top level must be a mapping of sections")
    if reserved := sorted(_SET_BY_LOADER & set(raw)):
        raise ConfigError(f"invalid config {source}:\n  - unknown key '{reserved[0]}'")
    expanded = _expand_env(raw, "")
    base = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    try:
        return PlatformConfig.model_validate({**expanded, "source_path": source, "base_dir": base})
    except ValidationError as exc:
        raise ConfigError(_describe(exc, expanded, source)) from None


def config_path() -> Path:
    return Path(os.environ.get(CONFIG_ENV_VAR) or DEFAULT_CONFIG_PATH)


def load_config(path: str | os.PathLike[str] | None = None) -> PlatformConfig:
    """Read and validate the config file (`path`, else `$BATCH_PLATFORM_CONFIG`, else the default)."""
    target = Path(path) if path else config_path()
    if not target.exists():
        raise ConfigError(f"config file {target} does not exist (set {CONFIG_ENV_VAR} to choose another)")
    try:
        raw = yaml.safe_load(target.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {target} is not valid YAML: {exc}") from None
    return parse_config(raw, str(target), base_dir=os.path.dirname(os.path.abspath(target)))
