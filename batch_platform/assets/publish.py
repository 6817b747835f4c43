"""Publishing: every materialised quarter of the published lake tables, copied to PostgreSQL
(SPEC.md, "Delivery"). These assets exist only when the config has `publish.postgres`.

`publish/<table>` quarter Q reads quarter Q of the Delta table `<lake>/<layer>/<table>` with
delta-rs (no Spark) and replaces quarter Q of `<schema>.<table>` in one transaction
(`batch_platform.postgres`). The quarter is read at ONE version of the table, the latest when its
publishing starts (recorded as `lake_version`): its rows are streamed from exactly the files of that
version, which no later commit rewrites (Delta adds new files and marks the old ones removed; VACUUM
deletes them only `storage.delta.retention_days` later), so a run materialising the same quarter
meanwhile cannot mix two versions into what is published. A single-run backfill publishes each
quarter in its own transaction, oldest first, so a failure leaves the quarters before it published
and the rest as they were. That transaction also creates the PostgreSQL table, or adds the columns
the table's model gained since it was created (`postgres.conform_table`: recorded as
`columns_added`); a table the platform would have to change otherwise fails the run, naming each
column.
"""

import dagster as dg

from batch_platform.config import PlatformConfig
from batch_platform.lake_files import Lake
from batch_platform.layout import PartitionNotMaterialised
from batch_platform.metadata import publish_metadata
from batch_platform.partitions import to_label
from batch_platform.postgres import (
    BATCH_ROWS,
    PostgresTarget,
    pg_columns,
    replace_quarter,
)
from batch_platform.schemas.gold import TRAINING_KEY
from batch_platform.schemas.ml import SCORES_KEY
from batch_platform.tables import table_for

PUBLISHED_TABLES = [TRAINING_KEY, SCORES_KEY]
"""The lake tables copied to PostgreSQL, each to `<schema>.<its table name>`."""

CODE_VERSION = "2"


def build_publish_assets(partitions_def: dg.PartitionsDefinition, config: PlatformConfig) -> list[dg.AssetsDefinition]:
    """One publishing asset per published table; none without `publish.postgres`."""
    if config.publish.postgres is None:
        return []
    lake = Lake.from_config(config)
    return [_publish_asset(source, lake, partitions_def) for source in PUBLISHED_TABLES]


def _publish_asset(source: dg.AssetKey, lake: Lake, partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """`publish/<name>`: the lake table `source`, with the PostgreSQL column types of its Pandera model."""
    declared = table_for(source)
    table, name, model = declared.name, source.path[-1], declared.model
    columns = [c.name for c in pg_columns(model)][1:]

    @dg.asset(
        key=["publish", name],
        deps=[source],
        group_name="publish",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"postgres", "delta"},
        code_version=CODE_VERSION,
        description=(
            f"{table} quarter Q copied to PostgreSQL table <publish.postgres.schema>.{name}, replacing exactly "
            "quarter Q in one transaction (readers see the old quarter or the new one), read at one Delta version "
            "of the table (`lake_version`). SPEC.md, 'Delivery'."
        ),
    )
    def publish(context: dg.AssetExecutionContext, postgres: PostgresTarget) -> None:
        target = f"{postgres.db_schema}.{name}"
        with postgres.connect() as conn:
            for key in sorted(context.partition_keys):
                quarter = to_label(key)
                try:
                    snapshot = lake.quarter(table, quarter)
                except PartitionNotMaterialised as exc:
                    raise dg.Failure(f"{exc}; materialise it before publishing it") from None
                batches = snapshot.batches(columns, BATCH_ROWS)
                done = replace_quarter(conn, postgres.db_schema, name, model, quarter, batches)
                context.log.info(
                    f"{target} {quarter}: {done.rows_loaded} rows of {table} version {snapshot.version} in "
                    f"{done.seconds}s (replaced {done.rows_deleted})"
                )
                metadata = publish_metadata(done, len(snapshot.files), quarter, target, postgres.describe())
                metadata["lake_version"] = dg.MetadataValue.int(snapshot.version)
                if done.columns_added:
                    context.log.warning(
                        f"{target} gained column(s) {', '.join(done.columns_added)} (nullable): the quarters "
                        "published before this version hold NULL in them until they are published again"
                    )
                    metadata["columns_added"] = dg.MetadataValue.text(", ".join(done.columns_added))
                context.add_asset_metadata(metadata, partition_key=key)

    return publish
