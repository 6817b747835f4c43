"""Column lineage: every silver and gold column that is computed traces back to bronze columns."""

import dagster as dg
import pytest

from batch_platform.schemas.bronze import SOURCE_COLUMNS
from batch_platform.tables import TABLES
from batch_platform_tests.platform import bronze_assets, gold_assets, ml_assets, silver_assets

TABLE_SCHEMAS = {table.name: table.model for table in TABLES.values()}


def lineage_for(table: str) -> dg.TableColumnLineage | None:
    return TABLES[dg.AssetKey(table.split("/"))].column_lineage()


FROM_PARTITION = {"quarter", "feature_cutoff", "label_window_start", "label_window_end"}


def _bronze_roots(table: str, column: str) -> set[tuple[str, str]]:
    if table.startswith("bronze/"):
        return {(table, column)}
    lineage = lineage_for(table)
    deps = lineage.deps_by_column.get(column, []) if lineage else []
    roots: set[tuple[str, str]] = set()
    for dep in deps:
        roots |= _bronze_roots("/".join(dep.asset_key.path), dep.column_name)
    return roots


@pytest.mark.parametrize("table", [t for t in TABLE_SCHEMAS if not t.startswith("bronze/")])
def test_every_computed_column_has_lineage_to_existing_columns(table):
    lineage = lineage_for(table)
    assert isinstance(lineage, dg.TableColumnLineage)
    columns = set(TABLE_SCHEMAS[table].to_schema().columns)
    assert columns - FROM_PARTITION <= set(lineage.deps_by_column) <= columns - {"quarter"}
    for deps in lineage.deps_by_column.values():
        for dep in deps:
            upstream = "/".join(dep.asset_key.path)
            assert dep.column_name in TABLE_SCHEMAS[upstream].to_schema().columns, (upstream, dep.column_name)


@pytest.mark.parametrize(
    "column, roots",
    [
        ("partner_score", {("bronze/external", "partner_score"), ("bronze/external", "_ingest_date")}),
        ("log_event_count", {("bronze/logs", c) for c in SOURCE_COLUMNS["logs"]}),
        ("amount_90d", {("bronze/operational", "event_time"), ("bronze/operational", "amount")}),
        ("label", {("bronze/operational", "customer_id"), ("bronze/operational", "event_time")}),
        ("split", {("bronze/operational", "customer_id")}),
    ],
)
def test_a_training_set_column_traces_back_to_bronze(column, roots):
    assert _bronze_roots("gold/training_set", column) == roots


def test_every_asset_definition_shows_the_lineage_and_schema_its_table_declares():
    """The asset definitions and the IO manager both take them from the one declaration."""
    specs = {
        spec.key: spec for asset in (*bronze_assets, *silver_assets, *gold_assets, *ml_assets) for spec in asset.specs
    }
    assert set(specs) == set(TABLES)
    for key, table in TABLES.items():
        metadata = specs[key].metadata
        assert metadata.get("dagster/column_lineage") == table.column_lineage(), key
        assert metadata["dagster/column_schema"] == table.column_schema(), key


PROFILE_SOURCES = {
    "contract": "contract",
    "payment_method": "payment_method",
    "monthly_charges": "monthly_charges",
    "country": "country",
    "tenure_months": "signup_date",
}
"""Each profile feature and the `gold/customer_history` attribute it is read from (SPEC.md, "Gold")."""


@pytest.mark.parametrize("feature", list(PROFILE_SOURCES))
def test_a_profile_feature_points_at_the_customer_history_it_is_read_from(feature):
    """`gold/customer_features` takes it from the version of the history valid at C (its attribute,
    chosen by valid_from and valid_to); `gold/training_set` from the features; down to the customers'
    landing columns, through silver's survivorship (the system and the update time)."""
    history = "gold/customer_history"
    deps = {
        ("/".join(d.asset_key.path), d.column_name)
        for d in lineage_for("gold/customer_features").deps_by_column[feature]
    }
    assert deps == {(history, PROFILE_SOURCES[feature]), (history, "valid_from"), (history, "valid_to")}
    training = lineage_for("gold/training_set").deps_by_column[feature]
    assert [("/".join(d.asset_key.path), d.column_name) for d in training] == [("gold/customer_features", feature)]
    landing = ("customer_id", "updated_at", "source_system", PROFILE_SOURCES[feature])
    assert _bronze_roots("gold/training_set", feature) == {("bronze/customers", column) for column in landing}
