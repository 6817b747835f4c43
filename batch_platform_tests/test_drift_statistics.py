"""A run's drift statistics computed together (`drift_statistics`): the same figures as pair by pair,
from a frame read once, with only aggregates reaching the driver (SPEC.md, "Monitoring")."""

from pyspark import StorageLevel
from pyspark.sql import functions as F

from batch_platform.drift import drift, drift_statistics, null_rates


def test_a_run_reads_its_frame_once_and_only_aggregates_reach_the_driver(spark, monkeypatch):
    rows = [(float(i) if i % 7 else None, f"c{i % 3}", q) for q in ("Q1", "Q2", "Q3") for i in range(600)]
    frame = spark.createDataFrame(rows, "x double, c string, q string")
    pairs = [("Q1", "Q2"), ("Q2", "Q3")]
    # each pair on its own (its two quarters alone) and the null rates on their own
    alone = {(r, s): drift(frame.where(F.col("q") == r), frame.where(F.col("q") == s), ["x"], ["c"]) for r, s in pairs}
    expected = (alone, null_rates(frame, "q", ["x", "c"]))
    persisted, collected = [], []
    classic = type(frame)  # pyspark.sql.classic's DataFrame: the methods Spark Classic runs
    persist, collect = classic.persist, classic.collect
    monkeypatch.setattr(classic, "persist", lambda self, *a: persisted.append(persist(self, *a)) or persisted[-1])
    monkeypatch.setattr(classic, "collect", lambda self: collected.append(collect(self)) or collected[-1])

    assert drift_statistics(frame, "q", pairs, ["x"], ["c"], rated=["x", "c"]) == expected
    # one frame cached for the call and released; 1,800 values, nearly all distinct, yet no collect
    # holds more rows than the bins of the pairs (2 references, 3 quarters binned, 10 bins each)
    assert len(persisted) == 1 and persisted[0].storageLevel == StorageLevel(False, False, False, False, 1)
    assert len(collected) == 4 and max(len(found) for found in collected) <= 40
