"""A lake table's commit log as the platform writes and reads it: what every IO-manager commit says
about itself in Delta's `userMetadata` (the one record of the quarters materialised with no rows,
which have no file), and the history of commits a reader lists (`batch-platform history`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover - typing only
    from batch_platform.delta import LakeTable

PLATFORM_METADATA = "batch_platform"
"""The key (and format version) that marks a commit's `userMetadata` as the platform's."""


def commit_metadata(run_id: str, quarters: Iterable[str], rows: Mapping[str, int], materialised: Iterable[str]) -> str:
    """The `userMetadata` JSON of one IO-manager commit: the run, the quarters it replaced, the rows of
    each, and `materialised`, every quarter ever materialised in the table (the previous platform
    commit's list plus these quarters), empty ones included. A quarter with no rows has no file in the
    table: this list is the one record that it was materialised (empty) rather than never."""
    replaced = sorted(set(quarters))
    return json.dumps(
        {
            PLATFORM_METADATA: 1,
            "run_id": run_id,
            "quarters": replaced,
            "rows": {quarter: int(rows.get(quarter, 0)) for quarter in replaced},
            "materialised": sorted(set(materialised) | set(replaced)),
        },
        separators=(",", ":"),
    )


def platform_metadata(commit: Mapping[str, Any]) -> dict[str, Any] | None:
    """The platform's metadata of a commit (an entry of `DeltaTable.history()`), or None for any other
    commit: VACUUM, OPTIMIZE, a write by hand."""
    text = commit.get("userMetadata")
    if not text:
        return None
    try:
        found = json.loads(text)
    except ValueError:
        return None
    return found if isinstance(found, dict) and found.get(PLATFORM_METADATA) == 1 else None


@dataclass(frozen=True)
class Commit:
    version: int
    time: datetime
    operation: str
    run_id: str | None
    quarters: list[str]
    """The quarters the commit replaced (the platform's metadata, else the quarters its predicate names)."""
    rows: int | None
    """The rows it wrote (the platform's metadata, else Delta's `numOutputRows`)."""
    rows_per_quarter: dict[str, int]


def history(table: LakeTable, limit: int | None = None) -> list[Commit]:
    """The table's commits up to its version, newest first (at most `limit`): version, time (UTC),
    operation, run id, quarters replaced and rows, from the platform's `userMetadata` or, for other
    commits, Delta's `operationParameters`/`operationMetrics`. Only the commits the log still keeps
    (`storage.delta.retention_days`)."""
    return [_commit(entry) for entry in _history(table, limit)]


_QUARTER = re.compile(r"\d{4}-Q[1-4]")


def _history(table: LakeTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The commit entries up to the table's version, newest first. delta-rs numbers the history of a
    table opened at an older version from that version (wrongly: it lists the later commits too), so
    the history is read from the latest version and cut at this one."""
    latest = table.latest_delta()
    if table.latest:
        return latest.history(limit)
    skip = latest.version() - table.version
    entries = [e for e in latest.history(None if limit is None else limit + skip) if e["version"] <= table.version]
    return entries[:limit] if limit is not None else entries


def latest_platform_metadata(table: LakeTable) -> dict[str, Any] | None:
    """The metadata of the platform's latest commit at the table's version (a VACUUM or OPTIMIZE may
    have committed after it): the last commit first (each commit read is a file read, a GET on S3),
    then the last 8, 64, …, the whole history only if need be."""
    limit = 1
    while True:
        entries = _history(table, limit)
        for entry in entries:
            if (metadata := platform_metadata(entry)) is not None:
                return metadata
        if len(entries) < limit:
            return None
        limit *= 8


def _commit(entry: Mapping[str, Any]) -> Commit:
    metadata = platform_metadata(entry)
    time = datetime.fromtimestamp(int(entry.get("timestamp", 0)) / 1000, UTC)
    operation = str(entry.get("operation", ""))
    if metadata is not None:
        per_quarter = {str(q): int(n) for q, n in (metadata.get("rows") or {}).items()}
        return Commit(
            int(entry["version"]), time, operation, metadata.get("run_id"), sorted(metadata.get("quarters") or []),
            sum(per_quarter.values()), per_quarter,
        )  # fmt: skip
    predicate = str((entry.get("operationParameters") or {}).get("predicate", ""))
    written = (entry.get("operationMetrics") or {}).get("numOutputRows")
    return Commit(
        int(entry["version"]), time, operation, None, sorted(set(_QUARTER.findall(predicate))),
        None if written is None else int(written), {},
    )  # fmt: skip
