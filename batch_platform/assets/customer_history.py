"""Gold: `gold/customer_history`, the golden customer record with its full history (SCD Type 2;
SPEC.md, "Gold").

Partition Q is built from every `silver/customer_profiles` partition from the first quarter to Q
(declared with a `TimeWindowPartitionMapping` reaching back past any first quarter, so Dagster
hands over exactly the partitions that exist up to Q). One run may cover several quarters: each
target quarter sees only the silver partitions up to it.

For one customer, its profile rows in order of updated_at; at each distinct updated_at t, each
golden attribute takes the value of the row with the latest updated_at ≤ t whose value for it is
not NULL; rows with the same updated_at are ordered by the system priority (`customers.
system_priority`, default store over online), the first system winning. In Spark: within
(target quarter, customer), rows ordered by (updated_at, priority, lowest first), `last(…,
ignorenulls)` over the rows up to the current one, then the last row of each updated_at holds the
golden values at t. A version starts at t when the golden attributes differ from those at the
previous t (NULL-safe, attribute by attribute); the first t always starts one.

Interpretations where SPEC.md is silent:
- a profile row delivered again in a later silver partition (same customer_id, source_system and
  updated_at) counts once: the copy of the latest partition, as silver keeps the latest delivery;
- a system missing from `system_priority` ranks after the named ones, by name.
"""

from collections.abc import Sequence

import dagster as dg
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from batch_platform.config_sections import CustomersConfig
from batch_platform.partitions import to_label
from batch_platform.schemas.base import PARTITION_COLUMN
from batch_platform.schemas.customer_history import CUSTOMER_HISTORY, HISTORY_KEY, PROFILES
from batch_platform.schemas.silver_profiles import GOLDEN_ATTRIBUTES

CODE_VERSION = "1"
EVERY_EARLIER_QUARTER = 4000
"""How far back the history's partition mapping reaches: a thousand years of quarters, so every
partition from the first quarter on (the mapping keeps only those that exist)."""
TARGET = "_target_quarter"
HISTORY_COLUMNS = ["customer_id", "version", "valid_from", "valid_to", "is_current", *GOLDEN_ATTRIBUTES]


def _priority(system_priority: Sequence[str]) -> Column:
    """0 for the first system of the priority, 1 for the next, …; unnamed systems after them."""
    rank = F.lit(len(system_priority))
    for index, system in reversed(list(enumerate(system_priority))):
        rank = F.when(F.col("source_system") == system, F.lit(index)).otherwise(rank)
    return rank


def compute_customer_history(profiles: DataFrame, quarters: Sequence[str], system_priority: Sequence[str]) -> DataFrame:
    """`gold/customer_history` for every quarter of `quarters`, from silver profile rows of any
    quarters (each carrying its partition in `quarter`); the result's `quarter` is the target."""
    targets = profiles.sparkSession.createDataFrame([(to_label(q),) for q in quarters], f"{TARGET} string")
    rows = profiles.join(F.broadcast(targets), F.col(PARTITION_COLUMN) <= F.col(TARGET))
    delivery = Window.partitionBy(TARGET, "customer_id", "source_system", "updated_at").orderBy(
        F.col(PARTITION_COLUMN).desc()
    )
    rows = (
        rows.withColumn("_copy", F.row_number().over(delivery))
        .filter(F.col("_copy") == 1)
        .withColumn("_priority", _priority(system_priority))
    )
    customer = (TARGET, "customer_id")
    # lowest priority first, so that at one updated_at the highest-priority row comes last and wins
    in_order = Window.partitionBy(*customer).orderBy("updated_at", F.col("_priority").desc(), "source_system")
    so_far = in_order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    golden = rows.select(
        *customer,
        "updated_at",
        *[F.last(name, ignorenulls=True).over(so_far).alias(name) for name in GOLDEN_ATTRIBUTES],
        F.lead("updated_at").over(in_order).alias("_next_updated_at"),
    )
    # the last row of each updated_at holds the golden values at that t
    at_t = golden.filter(F.col("_next_updated_at").isNull() | (F.col("_next_updated_at") != F.col("updated_at")))
    timeline = Window.partitionBy(*customer).orderBy("updated_at")
    unchanged = F.lit(True)
    for name in GOLDEN_ATTRIBUTES:
        unchanged = unchanged & F.col(name).eqNullSafe(F.lag(name).over(timeline))
    starts = at_t.withColumn("_first", F.row_number().over(timeline) == 1).withColumn("_same", unchanged)
    versions = starts.filter(F.col("_first") | ~F.col("_same")).withColumnRenamed("updated_at", "valid_from")
    in_versions = Window.partitionBy(*customer).orderBy("valid_from")
    valid_to = F.lead("valid_from").over(in_versions)
    return versions.select(
        "customer_id",
        F.row_number().over(in_versions).cast("int").alias("version"),
        "valid_from",
        valid_to.alias("valid_to"),
        valid_to.isNull().alias("is_current"),
        *GOLDEN_ATTRIBUTES,
        F.col(TARGET).alias(PARTITION_COLUMN),
    )


def build_customer_history_asset(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    every_earlier = dg.TimeWindowPartitionMapping(
        start_offset=-EVERY_EARLIER_QUARTER, end_offset=0, allow_nonexistent_upstream_partitions=True
    )

    @dg.asset(
        key=HISTORY_KEY,
        pool=CUSTOMER_HISTORY.pool,
        ins={"customer_profiles": dg.AssetIn(key=PROFILES, partition_mapping=every_earlier)},
        description=(
            "The golden customer record with its full history (SCD Type 2) as known at the end of Q: every version "
            "of every customer (version, valid_from, valid_to, is_current and the six golden attributes), built from "
            "every silver/customer_profiles partition from the first quarter to Q. Per attribute the latest non-null "
            "value; same updated_at: the system priority (customers.system_priority). SPEC.md, 'Gold'."
        ),
        metadata=CUSTOMER_HISTORY.definition_metadata(),
        group_name="gold",
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        kinds={"spark", "delta", "pandera"},
        code_version=CODE_VERSION,
    )
    def customer_history(
        context: dg.AssetExecutionContext,
        customers: dg.ResourceParam[CustomersConfig],
        customer_profiles: DataFrame,
    ) -> DataFrame:
        quarters = [to_label(key) for key in context.partition_keys]
        return compute_customer_history(customer_profiles, quarters, customers.system_priority)

    return customer_history
