"""The MLflow store the churn models are logged to and registered in, as a Dagster resource.

Its own module (no Spark, no gold imports) so `resources.py` can build it without importing the ML code.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from batch_platform.config import PlatformConfig, shown_uri

LOCAL_UI = "http://127.0.0.1:5000"
"""Where `make mlflow-ui` serves the local store; run links in the metadata point there."""


class MlflowStore(dg.ConfigurableResource):
    """The MLflow tracking server or local store the churn models are logged to and registered in."""

    tracking_uri: str
    artifact_location: str | None = None
    registered_model_name: str
    experiment_name: str

    def activate(self) -> str:
        """Point this process's MLflow client at the store; the experiment's id (created if new)."""
        import mlflow

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

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """A link to the run in the MLflow UI (never with the URI's user or password)."""
        base = shown_uri(self.tracking_uri) if self.tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
        return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


def build_mlflow_store(config: PlatformConfig) -> MlflowStore:
    return MlflowStore(
        tracking_uri=config.mlflow_tracking_uri,
        artifact_location=config.mlflow_artifact_location,
        registered_model_name=config.mlflow.registered_model_name,
        experiment_name=config.mlflow.experiment_name,
    )
