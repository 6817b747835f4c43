"""The MLflow store the churn models are logged to and registered in, as a Dagster resource.

Its own module (no Spark, no gold imports) so `resources.py` can build it without importing the ML code.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from batch_platform.config import LOCAL_UI_PORT, PlatformConfig, shown_uri

LOCAL_UI = f"http://127.0.0.1:{LOCAL_UI_PORT}"
"""Where `batch-platform mlflow-ui` (`make mlflow-ui`) serves the UI of a store that is not a tracking
server, such as the local SQLite store: the run links of such a store point there."""


class MlflowStore(dg.ConfigurableResource):
    """The MLflow tracking server or local store the churn models are logged to and registered in."""

    tracking_uri: str
    artifact_location: str | None = None
    registered_model_name: str
    experiment_name: str

    def activate(self) -> str:
        """Point this process's MLflow client at the store; the experiment's id (created if new)."""
        import mlflow  # start-up time: MLflow loads only when a run logs to it

        if self.tracking_uri.startswith("sqlite:///"):
            Path(self.tracking_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        experiment = mlflow.get_experiment_by_name(self.experiment_name)
        if experiment is not None:
            return experiment.experiment_id
        location = Path(self.artifact_location).resolve().as_uri() if self.artifact_location else None
        return mlflow.create_experiment(self.experiment_name, artifact_location=location)

    def is_empty_local_store(self) -> bool:
        """A local store never written to (no database file yet): it holds no model and no alias."""
        return (
            self.tracking_uri.startswith("sqlite:///")
            and not Path(self.tracking_uri.removeprefix("sqlite:///")).exists()
        )

    def is_server(self) -> bool:
        """A tracking server (`http(s)://`), which serves its own UI; no other store has one running."""
        return self.tracking_uri.startswith(("http://", "https://"))

    def ui_url(self) -> str:
        """The store's MLflow UI: a tracking server's own URL (never with the URI's user or password),
        else `LOCAL_UI`."""
        return shown_uri(self.tracking_uri).rstrip("/") if self.is_server() else LOCAL_UI

    def ui_hint(self) -> str:
        """How to open the store's run links, for the materialisations that carry them."""
        if self.is_server():
            return f"MLflow tracking server: the links open its UI at {self.ui_url()}"
        return (
            f"MLflow store {shown_uri(self.tracking_uri)}, not a server: to open the links, serve its UI at "
            f"{LOCAL_UI} with `batch-platform mlflow-ui` (or `make mlflow-ui`)"
        )

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """A link to the run in the store's MLflow UI (`ui_url`)."""
        return f"{self.ui_url()}/#/experiments/{experiment_id}/runs/{run_id}"


def build_mlflow_store(config: PlatformConfig) -> MlflowStore:
    return MlflowStore(
        tracking_uri=config.mlflow_tracking_uri,
        artifact_location=config.mlflow_artifact_location,
        registered_model_name=config.mlflow.registered_model_name,
        experiment_name=config.mlflow.experiment_name,
    )
