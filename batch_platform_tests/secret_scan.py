"""Where a secret could hide in a Dagster home, looked for byte by byte: `places_holding(home, secrets)`.

Every file under the home is read raw; every SQLite database (run, event-log and schedule storage)
is also read value by value, every column of every table, and each text or bytes value is looked at
as stored, zlib-decompressed (Dagster compresses job and execution-plan snapshots, so a plain grep
of the file misses what they hold) and base64-decoded then decompressed. A secret is looked for as
written, percent-encoded and JSON-escaped.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

SQLITE_HEADER = b"SQLite format 3\x00"


def forms(secret: str) -> set[bytes]:
    """The ways `secret` may be written down: as is, percent-encoded (a URL), JSON-escaped."""
    return {form.encode() for form in (secret, quote(secret, safe=""), quote_plus(secret), json.dumps(secret)[1:-1])}


def readings(value: object) -> Iterator[bytes]:
    """A stored value as it is, zlib-decompressed and base64-decoded (then decompressed), as far as
    each applies."""
    raw = value.encode() if isinstance(value, str) else bytes(value) if isinstance(value, (bytes, memoryview)) else None
    if raw is None:
        return
    yield raw
    candidates = [raw]
    try:
        candidates.append(base64.b64decode(raw, validate=True))
        yield candidates[-1]
    except (binascii.Error, ValueError):
        pass
    for candidate in candidates:
        with contextlib.suppress(zlib.error):
            yield zlib.decompress(candidate)


def _database_values(path: Path) -> Iterator[tuple[str, object]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            cursor = connection.execute(f'SELECT * FROM "{table}"')
            columns = [d[0] for d in cursor.description]
            for row in cursor:
                for column, value in zip(columns, row, strict=True):
                    yield f"{table}.{column}", value
    finally:
        connection.close()


def places_holding(home: Path, secrets: Iterable[str]) -> list[str]:
    """Every file under `home`, and every `table.column` of its SQLite databases, holding one of
    `secrets` in any of its `forms`, raw or decoded (`readings`)."""
    wanted = {form for secret in secrets for form in forms(secret)}
    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if any(form in reading for reading in readings(data) for form in wanted):
            found.append(str(path))
        if data.startswith(SQLITE_HEADER):
            found += sorted({
                f"{path}: {where}"
                for where, value in _database_values(path)
                if any(form in reading for reading in readings(value) for form in wanted)
            })  # fmt: skip
    return found
