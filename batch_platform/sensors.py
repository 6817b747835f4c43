"""`landing_sensor` (built by `build_landing_sensor`): new landing files start a run of `training_set_job` for their quarter.

Off by default (turn it on in the UI, Automation, with the daemon running). Every evaluation
lists the landing zone — a folder, or `s3a://` through the `s3` resource (dagster-aws's
`S3Resource`: boto3, with `storage.s3`), which the sensor requires only for an `s3a://` landing
root — and compares it with the cursor, the set of files already seen. The new files are
grouped by the quarter of their arrival folder (`<folder>/<YYYY-MM-DD>/<file>`), and each quarter
gets one run request (bronze → silver → gold of that quarter). A file enters the cursor when a run
is requested for it, so the sensor never ingests a file twice.

A quarter that is not a partition yet (the current, unfinished one) has no run: its files stay
out of the cursor and trigger one run as soon as the quarter is complete (the quarterly schedule
builds the same quarter at that moment: turn on one of the two). Files of quarters before
`batch.first_quarter`, hidden files (`_`, `.`) and unknown extensions are never ingested.

The sources watched, their folders and file formats are the bronze declarations'
(`schemas.bronze.BRONZE_TABLES`): a source declared there is watched, with no change here.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import date

import dagster as dg

from batch_platform import storage
from batch_platform.jobs import TRAINING_SET_JOB
from batch_platform.landing import _FOLDER_DATE, FORMATS
from batch_platform.layout import is_s3
from batch_platform.partitions import label_of, to_key
from batch_platform.schemas.bronze import BRONZE_TABLES, BronzeTable


def watched_sources() -> dict[str, BronzeTable]:
    """The declared bronze sources by landing folder: what the sensor watches (read at every call)."""
    return {table.folder: table for table in BRONZE_TABLES.values()}


def landing_files(root: str, s3_client=None) -> list[str]:
    """Every file under `<root>/<folder>/` of each declared source, as `<folder>/<YYYY-MM-DD>/<name>`
    paths. An `s3a://` root is listed with `s3_client` (boto3's, as the `s3` resource gives it to a
    sensor); a folder needs none."""
    if is_s3(root) and s3_client is None:
        raise dg.Failure(f"the landing zone {root} is on S3 but the sensor was built without the s3 resource")
    return storage.list_tree(root, list(watched_sources()), s3_client if is_s3(root) else None)


def arrival_quarter(path: str) -> str | None:
    """The quarter of a landing file's arrival folder; None for a file the bronze step never reads:
    outside a declared source's folder, hidden, or not in one of the source's declared formats."""
    parts = path.split("/")
    table = watched_sources().get(parts[0])
    if table is None or len(parts) != 3 or not _FOLDER_DATE.match(parts[1]) or parts[2].startswith(("_", ".")):
        return None
    if FORMATS.get("." + parts[2].rsplit(".", 1)[-1].lower()) not in table.formats:
        return None
    try:
        return label_of(date.fromisoformat(parts[1]))
    except ValueError:
        return None


def build_landing_sensor(partitions_def: dg.PartitionsDefinition, *, on_s3: bool = False) -> dg.SensorDefinition:
    """The landing sensor on the platform's partitions (built once by `build_definitions`), targeting `training_set_job`.
    It uses the `landing` resource, and the `s3` resource when `on_s3` (an `s3a://` landing root)."""

    @dg.sensor(
        job_name=TRAINING_SET_JOB,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.STOPPED,
        required_resource_keys={"landing", "s3"} if on_s3 else {"landing"},
        description="New files in the landing zone → training_set_job (bronze → gold) for their arrival quarter.",
    )
    def landing_sensor(context: dg.SensorEvaluationContext):
        root = context.resources.landing.root
        seen = set(json.loads(context.cursor)) if context.cursor else set()
        partitions = {key: None for key in partitions_def.get_partition_keys()}
        new: dict[str, list[str]] = defaultdict(list)
        waiting = 0
        for path in landing_files(root, context.resources.s3 if on_s3 else None):
            quarter = arrival_quarter(path)
            if path in seen or quarter is None:
                continue
            if to_key(quarter) in partitions:
                new[quarter].append(path)
            elif to_key(quarter) > max(partitions, default=""):
                waiting += 1  # the quarter is still open
            else:
                seen.add(path)  # before batch.first_quarter: never a partition
        if not new:
            context.update_cursor(json.dumps(sorted(seen)))
            yield dg.SkipReason(f"no new landing files ({waiting} waiting for their quarter to end)")
            return
        for quarter, paths in sorted(new.items()):
            seen.update(paths)
            digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]
            yield dg.RunRequest(
                run_key=f"landing-{quarter}-{digest}",
                partition_key=to_key(quarter),
                tags={"batch_platform/landing_files": str(len(paths)), "batch_platform/quarter": quarter},
            )
        context.update_cursor(json.dumps(sorted(seen)))

    return landing_sensor
