"""`batch-platform serve`: the HTTP API that hands out the lake's datasets (SPEC.md, "Delivery").

    GET /health                                   no token
    GET /docs, /openapi.json                      no token
    GET /datasets                                 every lake table and its materialised quarters
    GET /datasets/{layer}/{table}/{quarter}       quarter (`2025-Q4` or `2025-10-01`) or `latest`:
                                                  Delta version, row count, schema and
                                                  `files: [{url, size}]`
    GET /files/{key}?expires=…&signature=…        folder lake only: one Parquet file, no token

Every other request needs `Authorization: Bearer <token>`, the token being the environment
variable `BATCH_PLATFORM_API_TOKEN`, compared in constant time; anything else gets 401. A file url
is a plain GET until it expires: presigned by boto3 when the lake is on S3; signed here (HMAC-SHA256
over the file's key and the expiry, with a key derived from the token) when the lake is a folder,
so a tampered or expired url gets 403 and changing the token revokes every url handed out.

Every table is a Delta table (SPEC.md, "Lake"), read with delta-rs (`batch_platform.lake_files`), no
Spark: a request answers from one version of a table, its latest (`LatestVersions`: each table is
kept open and brought up to date with the commits made since, a listing of its log when there are
none) — the quarters materialised, the quarter's row count (the file statistics in the log: no data
read), its columns, and `files`, the Parquet files of the quarter in that version (never a file a
later commit replaced, though it may still lie in the folder until VACUUM), with the `version`. A url handed out
keeps downloading its file after a newer commit replaces the quarter: the file is immutable and stays
until VACUUM, `storage.delta.retention_days` later. A request can only ever name a registered table, a
quarter label and a file name of the lake layout, so no path it holds reaches outside the lake; the
resolved file must also lie inside the lake root.

The edges of a request:
- a credential in the query string (`?token=`, `?access_token=`, `?api_key=`, …: every name
  `is_credential_param` matches, in any case and after percent-decoding) gets 401 before any
  route: the token travels in the Authorization header only, which no log records;
- every log line of the server (uvicorn's access log included) shows the values of credential
  parameters and of a file url's `signature` as `***`, the names matched after percent-decoding
  (`sig%6Eature` is `signature`);
- the request line and headers together may hold `MAX_HEAD_BYTES` (16 KiB): h11 stops reading a
  head that grows past it (400, connection closed) and a head that arrived whole but is larger gets
  431 (`guard`), so no client makes the server hold more;
- a file url starts with the API's public base url (`api.public_url`, `serve --public-url`, else
  `http://<host>:<port>` as bound), never with the request's Host header, which the client writes.
"""

import hashlib
import hmac
import logging
import os
import re
import time
from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated
from urllib.parse import quote, unquote_plus

import dagster as dg
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from batch_platform.lake_files import Lake, LakeFile, LatestVersions, TableVersion
from batch_platform.layout import FILE_KEY
from batch_platform.partitions import QuarterError, to_key, to_label
from batch_platform.s3 import boto3_client
from batch_platform.tables import table_for

TOKEN_ENV = "BATCH_PLATFORM_API_TOKEN"
DEFAULT_URL_TTL = 900
LATEST = "latest"
MAX_HEAD_BYTES = 16 * 1024
"""The most a request line and its headers may hold together: a browser's or a client library's
request is well under 4 KiB, a bearer token under 1 KiB."""
_CREDENTIAL_NAME = re.compile(r"token|passw|pwd|secret|apikey|auth|credential|session|jwt|bearer|^key$|^sig$")
_QUERY_PAIR = re.compile(r"([?&;])([^=&;#\s\"]*)=([^&;#\s\"]*)")


class UrlSigner:
    """Signs and checks the file urls of a folder lake. The HMAC key is derived from the API token
    (never the token itself), so a url reveals nothing about the token."""

    def __init__(self, token: str):
        self._key = hmac.new(token.encode(), b"batch_platform file urls v1", hashlib.sha256).digest()

    def signature(self, key: str, expires: int) -> str:
        return hmac.new(self._key, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()

    def check(self, key: str, expires: int, signature: str) -> None:
        if not hmac.compare_digest(self.signature(key, expires).encode(), signature.encode()):
            raise HTTPException(
                403,
                "the url's signature does not match: it was altered; ask /datasets for a new one",
            )
        if expires < time.time():
            when = datetime.fromtimestamp(expires, UTC).isoformat()
            raise HTTPException(403, f"the url expired at {when}; ask /datasets for a new one")


class Delivery:
    """What the endpoints need: the lake, the token's checks and the url signing."""

    def __init__(self, lake: Lake, token: str, public_url: str, url_ttl: int = DEFAULT_URL_TTL):
        if not token:
            raise ValueError(f"set {TOKEN_ENV}: the API refuses to run without a token")
        self.lake, self.public_url, self.url_ttl = lake, public_url, url_ttl
        self.versions = LatestVersions(lake)
        self._token = token.encode()
        self.signer = UrlSigner(token)

    def authorise(self, credentials: HTTPAuthorizationCredentials | None) -> None:
        given = credentials.credentials.encode() if credentials and credentials.scheme.lower() == "bearer" else b""
        if not hmac.compare_digest(given, self._token):
            raise HTTPException(
                401,
                "a valid token is required: Authorization: Bearer <token>",
                {"WWW-Authenticate": "Bearer"},
            )

    def table(self, layer: str, name: str) -> str:
        table = f"{layer}/{name}"
        if table not in self.lake.tables():
            raise HTTPException(
                404,
                f"unknown table {table!r}; the lake's tables: {', '.join(self.lake.tables())}",
            )
        return table

    def quarter(self, table: str, quarter: str, described: TableVersion | None) -> str:
        materialised = described.quarters if described is not None else []
        if quarter == LATEST:
            if not materialised:
                raise HTTPException(404, f"{table} has no materialised quarter yet")
            return materialised[-1]
        try:
            label = to_label(quarter)
        except QuarterError as exc:
            raise HTTPException(400, str(exc)) from None
        if label not in materialised:
            raise HTTPException(
                404,
                f"{table} has no materialised quarter {label}; it has: {', '.join(materialised) or 'none'}",
            )
        return label

    def url(self, file: LakeFile, expires: int) -> str:
        if self.lake.on_s3:
            return self.s3_client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.lake.bucket_and_prefix[0], "Key": self.lake.object_key(file.key)},
                ExpiresIn=self.url_ttl,
            )
        signature = self.signer.signature(file.key, expires)
        return f"{self.public_url}/files/{quote(file.key, safe='/=')}?expires={expires}&signature={signature}"

    @cached_property
    def s3_client(self):
        return boto3_client(self.lake.s3)

    def check_key(self, key: str) -> None:
        """`key` must follow the lake layout exactly: a registered table, a quarter, a file name."""
        match = FILE_KEY.match(key)
        if not match or f"{match.group(1)}/{match.group(2)}" not in self.lake.tables():
            raise HTTPException(
                400,
                f"{key!r} is not a file of the lake: <layer>/<table>/quarter=<YYYY-QN>/<name>.parquet",
            )

    def local_file(self, key: str) -> str:
        """The path of the lake file `key` (checked), which must lie inside the lake root."""
        root = os.path.realpath(self.lake.base)
        path = os.path.realpath(self.lake.local_path(key))
        if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
            raise HTTPException(404, f"no file {key!r} in the lake")
        return path


def describe_quarter(delivery: Delivery, table: str, quarter: str, described: TableVersion) -> dict:
    columns = table_for(dg.AssetKey(table.split("/"))).model.to_schema().columns
    files = described.files[quarter]
    expires = int(time.time()) + delivery.url_ttl
    return {
        "table": table,
        "quarter": quarter,
        "partition_key": to_key(quarter),
        "version": described.version,
        "row_count": described.rows[quarter],
        "schema": [
            {
                "name": c.name,
                "type": str(c.type),
                "nullable": c.nullable,
                "description": getattr(columns.get(c.name), "description", None),
            }
            for c in described.schema
        ],
        "files": [{"url": delivery.url(f, expires), "size": f.size} for f in files],
        "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
    }


def create_app(delivery: Delivery) -> FastAPI:
    app = FastAPI(
        title="batch_platform datasets",
        description="The lake's quarterly tables as downloadable Parquet files (SPEC.md, 'Delivery').",
        version="1",
    )
    bearer = HTTPBearer(auto_error=False, description=f"the token in {TOKEN_ENV}")

    @app.middleware("http")
    async def guard(request: Request, call_next):
        """A head over `MAX_HEAD_BYTES` gets 431, a credential in the query string 401, before any route."""
        scope = request.scope
        headers = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
        if len(scope["raw_path"]) + len(scope["query_string"]) + headers > MAX_HEAD_BYTES:
            return JSONResponse({"detail": f"the request line and headers exceed {MAX_HEAD_BYTES} bytes"}, 431)
        pairs = re.split("[&;]", scope["query_string"].decode("latin-1"))
        if any(is_credential_param(param_name(pair.split("=", 1)[0])) for pair in pairs):
            return JSONResponse(
                {"detail": "no credential in the query string, which logs record: send Authorization: Bearer <token>"},
                401,
                {"WWW-Authenticate": "Bearer"},
            )
        return await call_next(request)

    def authorised(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> None:
        delivery.authorise(credentials)

    @app.get("/health", summary="liveness, no token")
    def health() -> dict:
        return {"status": "ok"}

    @app.get(
        "/datasets",
        dependencies=[Depends(authorised)],
        summary="every lake table and its quarters",
    )
    def datasets() -> dict:
        tables = [(t, d.quarters if d is not None else []) for t, d in delivery.versions.every().items()]
        return {
            "datasets": [
                {
                    "table": t,
                    "layer": t.split("/")[0],
                    "name": t.split("/")[1],
                    "quarters": q,
                    "latest": q[-1] if q else None,
                }
                for t, q in tables
            ]
        }

    @app.get(
        "/datasets/{layer}/{table}/{quarter}",
        dependencies=[Depends(authorised)],
        summary="one quarter (YYYY-QN, its first day, or 'latest'): rows, schema, file urls",
    )
    def dataset(layer: str, table: str, quarter: str) -> dict:
        name = delivery.table(layer, table)
        described = delivery.versions.get(name)  # one version answers the whole request
        return describe_quarter(delivery, name, delivery.quarter(name, quarter, described), described)

    @app.get(
        "/files/{key:path}",
        name="download",
        summary="a signed file url of a folder lake (no token)",
    )
    def download(key: str, expires: Annotated[int, Query()], signature: Annotated[str, Query()]) -> FileResponse:
        if delivery.lake.on_s3:
            raise HTTPException(404, "the lake is on S3: its file urls are presigned S3 urls")
        delivery.check_key(key)
        delivery.signer.check(key, expires, signature)
        path = delivery.local_file(key)
        return FileResponse(
            path,
            media_type="application/vnd.apache.parquet",
            filename=key.rsplit("/", 1)[-1],
        )

    return app


def param_name(raw: str) -> str:
    """A query parameter's name as a server could read it: percent-decoded (`+` is a space) until
    nothing changes, so `sig%6Eature` and `tok%256Ben` are `signature` and `token`."""
    name = raw
    for _ in range(4):
        name, before = unquote_plus(name, encoding="latin-1"), name
        if name == before:
            break
    return name


def is_credential_param(name: str) -> bool:
    """A (decoded) parameter name that carries a credential: token, access_token, api-key, apiKey,
    password, secret, auth, X-Amz-Credential, … — case, `-`, `_` and spaces aside."""
    return bool(_CREDENTIAL_NAME.search(_letters(name)))


def redact_query(text: str) -> str:
    """`text` with the value of every credential parameter and of every signature (a signed url's,
    which downloads the file) in a query string shown as `***`."""

    def hide(match: re.Match) -> str:
        name = param_name(match.group(2))
        if is_credential_param(name) or _letters(name).endswith("signature"):
            return f"{match.group(1)}{match.group(2)}=***"
        return match.group(0)

    return _QUERY_PAIR.sub(hide, text)


def _letters(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


class RedactQueryCredentials(logging.Filter):
    """Log lines (uvicorn's access log among them) never show a credential or a file url's signature."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in record.args)
        return True


def serve(lake: Lake, host: str, port: int, url_ttl: int = DEFAULT_URL_TTL, public_url: str | None = None) -> None:
    """Serve the API on `host:port`, its file urls starting with `public_url` (default
    `http://<host>:<port>`). h11 rather than httptools parses the requests: it bounds a request's
    head (`MAX_HEAD_BYTES`), which httptools does not."""
    shown_host = f"[{host}]" if ":" in host else host
    base = public_url or f"http://{shown_host}:{port}"
    app = create_app(Delivery(lake, os.environ.get(TOKEN_ENV, ""), base, url_ttl))
    config = uvicorn.Config(
        app, host=host, port=port, log_level="info", http="h11", h11_max_incomplete_event_size=MAX_HEAD_BYTES
    )
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).addFilter(RedactQueryCredentials())
    uvicorn.Server(config).run()
