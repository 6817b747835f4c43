"""The landing layout: `<landing>/<folder>/<YYYY-MM-DD>/<name>.<csv|json|parquet>`, each source's
folder and formats as its bronze declaration says. `Landing` writes one file and lists it for the
manifest; `SourceFiles` cuts a source's quarter into its arrival folders and files."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch_platform.partitions import label_of
from batch_platform.sample_data.dirt import Rows
from batch_platform.sample_data.population import Schedule
from batch_platform.schemas.bronze import BronzeTable

EMPTY_KINDS = ("zero_byte", "header_only")
"""Files without rows: empty, or a header line only (written as CSV)."""


class Landing:
    """The landing root being written, and the manifest entries of the files written so far."""

    def __init__(self, root: Path):
        self.root = root
        self.files: list[dict] = []

    def write(
        self,
        table: BronzeTable,
        day: np.datetime64,
        name: str,
        fmt: str,
        kind: str,
        columns: Sequence[str],
        data: dict[str, np.ndarray] | None,
    ) -> int:
        """Write `data` as one file of `table`'s arrival folder `day`; the rows written."""
        folder = self.root / table.folder / str(day)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{name}.{'csv' if fmt in EMPTY_KINDS else fmt}"
        rows = 0 if data is None else len(next(iter(data.values())))
        if fmt == "zero_byte":
            path.write_bytes(b"")
            columns = []
        elif fmt == "header_only":
            path.write_text(",".join(columns) + "\n", encoding="utf-8")
        elif fmt == "csv":
            pd.DataFrame({c: data[c] for c in columns}).to_csv(path, index=False, lineterminator="\n", encoding="utf-8")
        elif fmt == "json":
            text = pd.DataFrame({c: data[c] for c in columns}).to_json(orient="records", lines=True, force_ascii=True)
            text = text.replace("\\/", "/")
            path.write_text(text if text.endswith("\n") or not text else text + "\n", encoding="utf-8")
        elif fmt == "parquet":
            arrow = pa.table({c: pa.array(data[c], type=pa.string()) for c in columns})
            pq.write_table(arrow, path)
        else:
            raise ValueError(fmt)
        self.files.append(
            {
                "source": table.source,
                "path": path.relative_to(self.root).as_posix(),
                "format": "csv" if fmt in EMPTY_KINDS else fmt,
                "kind": kind,
                "arrival_date": str(day),
                "quarter": label_of(day.astype(object)),
                "rows": rows,
                "columns": list(columns),
            }
        )
        return rows


@dataclass(frozen=True)
class SourceFiles:
    """Writes the files of one source into its arrival folders (`schedule`)."""

    landing: Landing
    table: BronzeTable
    schedule: Schedule

    def _name(self, day: np.datetime64, suffix: str) -> str:
        return f"{self.table.source}_{str(day).replace('-', '')}_{suffix}"

    def write_quarter(
        self,
        rng: np.random.Generator,
        qi: int,
        rows: Rows,
        columns: list[str],
        extra_column: str | None,
        dirt: dict[str, int],
        reordered: bool,
    ) -> None:
        """Cut the quarter's rows into its (drop, part) files: one JSON file, one Parquet file and
        one CSV with shuffled columns among them, the rest plain CSV; plus a zero-byte and a
        header-only file, in drops half the quarter apart (one draw: the rows a seed gives do not
        depend on how many empty files there are). `columns` is the quarter's order (`reordered`:
        not the declaration's). The file kinds written are counted in `dirt`."""
        sched = self.schedule
        drops = sched.drops_of(qi)
        file_ids = np.concatenate([sched.first_file[d] + np.arange(sched.parts[d]) for d in drops])
        order = np.lexsort((np.arange(len(rows.file)), rows.order, rows.file))
        sorted_file = rows.file[order]
        cut = np.searchsorted(sorted_file, np.concatenate([file_ids, [file_ids[-1] + 1]]))
        json_i, parquet_i, shuffled_i = rng.choice(len(file_ids), size=3, replace=False)
        shuffle = rng.permutation(len(columns))
        if (shuffle == np.arange(len(columns))).all():
            shuffle = np.roll(shuffle, 1)
        for i, fid in enumerate(file_ids):
            d = drops[np.searchsorted(sched.first_file[drops], fid, side="right") - 1]
            part = fid - sched.first_file[d]
            sel = order[cut[i] : cut[i + 1]]
            data = {c: v[sel] for c, v in rows.columns.items()}
            fmt = "json" if i == json_i else "parquet" if i == parquet_i else "csv"
            cols = [columns[j] for j in shuffle] if i == shuffled_i else columns
            self.landing.write(
                self.table, sched.day[d], self._name(sched.day[d], f"part{part + 1}"), fmt, "data", cols, data
            )
        dirt.update(json_file=1, parquet_file=1, shuffled_columns_file=1)
        dirt["reordered_columns_file"] = len(file_ids) if reordered else 0
        if extra_column is not None:
            dirt["extra_column_file"] = len(file_ids) if extra_column in columns else 0

        first = int(rng.integers(0, len(drops)))
        for k, empty in enumerate(EMPTY_KINDS):
            d = drops[(first + k * (len(drops) // 2)) % len(drops)]
            self.landing.write(self.table, sched.day[d], self._name(sched.day[d], empty), empty, empty, columns, None)
            dirt[f"{empty}_file"] = 1

    def redeliver(
        self,
        rng: np.random.Generator,
        quarters: list[str],
        qi: int,
        pools: list[tuple[list[str], dict[str, np.ndarray]]],
    ) -> int:
        """Redeliver, into quarter `qi`, a sample of the clean rows of the previous quarter (or of
        the one before), `pools[q]` being quarter q's sample and its columns; the rows written."""
        if qi < 1:
            return 0
        back = 1 if qi == 1 else int(rng.integers(1, 3))
        old_columns, old_rows = pools[qi - back]
        drops = self.schedule.drops_of(qi)
        d = drops[int(rng.integers(0, len(drops)))]
        day = self.schedule.day[d]
        return self.landing.write(
            self.table,
            day,
            self._name(day, f"redelivery_{quarters[qi - back]}"),
            "csv",
            "redelivery",
            old_columns,
            old_rows,
        )
