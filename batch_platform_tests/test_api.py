"""The datasets API (SPEC.md, "Delivery") through a real `batch-platform serve` process on a free
loopback port and a real HTTP client, over a real lake (bronze → silver → gold on generated data).

The server runs as a subprocess of the CLI, exactly as `make serve` starts it, and is stopped by
its PID at the end of the module, also when a test fails. Path tricks are sent with `http.client`,
which sends the request target byte for byte (clients like `requests` normalise dot segments).
"""

from __future__ import annotations

import http.client
import io
import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
import yaml
from deltalake import DeltaTable

from batch_platform import delta
from batch_platform.api import TOKEN_ENV, UrlSigner
from batch_platform.partitions import to_key
from batch_platform_tests.delivery_fixtures import DELIVERY_QUARTERS
from batch_platform_tests.delta_fixtures import commit_rows, copy_lake, customers, model_rows
from batch_platform_tests.procs import free_port, stop_process_group

CLI = str(Path(sys.executable).parent / "batch-platform")
STARTUP_SECONDS = 120
TRAINING = "gold/training_set"


@dataclass
class ApiServer:
    base_url: str
    token: str
    log: Path
    process: subprocess.Popen

    def get(self, path: str, token: str | None = None, **kwargs) -> requests.Response:
        headers = {"Authorization": f"Bearer {token if token is not None else self.token}"}
        return requests.get(self.base_url + path, headers=headers, timeout=60, **kwargs)

    def raw(self, target: str) -> tuple[int, dict]:
        """GET `target` sent as is, with the token."""
        connection = http.client.HTTPConnection(urlsplit(self.base_url).netloc, timeout=60)
        try:
            connection.request("GET", target, headers={"Authorization": f"Bearer {self.token}"})
            response = connection.getresponse()
            return response.status, json.loads(response.read() or b"{}")
        finally:
            connection.close()


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw))
    return path


def start_api(config_file: Path, workdir: Path, env: dict | None = None, args: Sequence[str] = ()) -> ApiServer:
    port, token = free_port(), secrets.token_urlsafe(24)
    log = workdir / "api.log"
    environment = {
        **os.environ,
        "BATCH_PLATFORM_CONFIG": str(config_file),
        TOKEN_ENV: token,
        **(env or {}),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
            stdout=out, stderr=subprocess.STDOUT, env=environment, start_new_session=True,
        )  # fmt: skip
    server = ApiServer(f"http://127.0.0.1:{port}", token, log, process)
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"batch-platform serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if requests.get(server.base_url + "/health", timeout=2).status_code == 200:
                return server
        except requests.ConnectionError:
            time.sleep(0.3)
    stop_api(server)
    raise RuntimeError(f"batch-platform serve did not answer within {STARTUP_SECONDS}s:\n{log.read_text()[-3000:]}")


def stop_api(server: ApiServer) -> None:
    stop_process_group(server.process, term_grace=20, kill_grace=10)


def lake_config(lake_root: str, tmp: Path, **extra) -> dict:
    return {"storage": {"lake_root": lake_root, "landing_root": str(tmp / "landing"), **extra},
            "spark": {"master": "local[1]", "ui_enabled": False}}  # fmt: skip


def read_urls(files: list[dict]) -> pa.Table:
    """Every url downloaded with a plain GET (no header) and read with pyarrow (a quarter materialised
    empty has no file: no rows)."""
    tables = [pa.table({})]
    for entry in files:
        response = requests.get(entry["url"], timeout=60)
        assert response.status_code == 200, response.text
        assert len(response.content) == entry["size"]
        tables.append(pq.read_table(io.BytesIO(response.content)))
    return pa.concat_tables(tables[1:]) if len(tables) > 1 else tables[0]


def sorted_rows(table: pa.Table) -> list[dict]:
    return sorted(table.to_pylist(), key=lambda row: row["customer_id"])


def lake_rows(lake_root: str, table: str, quarter: str) -> pa.Table:
    """A quarter of a lake table as Delta's latest version holds it, without the partition column (the
    columns of the files)."""
    return delta.read_quarter(delta.open_table(f"{lake_root}/{table}"), quarter).drop(["quarter"])


def current_sizes(lake_root: str, table: str, quarter: str) -> list[int]:
    actions = pa.table(DeltaTable(f"{lake_root}/{table}").get_add_actions(flatten=True)).to_pylist()
    return sorted(a["size_bytes"] for a in actions if a["partition.quarter"] == quarter)


@pytest.fixture(scope="module")
def api(delivery_lake, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("api")
    config_file = write_config(workdir / "config.yaml", lake_config(delivery_lake.lake_root, workdir))
    server = start_api(config_file, workdir)
    try:
        yield server
    finally:
        stop_api(server)


# --------------------------------------------------------------------------------------- auth
def test_health_and_docs_need_no_token(api):
    assert requests.get(api.base_url + "/health", timeout=30).json() == {"status": "ok"}
    assert "swagger" in requests.get(api.base_url + "/docs", timeout=30).text.lower()
    paths = requests.get(api.base_url + "/openapi.json", timeout=30).json()["paths"]
    assert {"/datasets", "/datasets/{layer}/{table}/{quarter}"} <= set(paths)


@pytest.mark.parametrize(
    "path",
    ["/datasets", f"/datasets/{TRAINING}/latest", f"/datasets/{TRAINING}/2024-Q2"],
)
def test_without_or_with_a_wrong_token_every_dataset_endpoint_says_401(api, path):
    assert requests.get(api.base_url + path, timeout=30).status_code == 401
    assert api.get(path, token=api.token + "x").status_code == 401
    assert api.get(path, token="").status_code == 401
    basic = requests.get(api.base_url + path, headers={"Authorization": f"Basic {api.token}"}, timeout=30)
    assert basic.status_code == 401 and basic.headers["WWW-Authenticate"] == "Bearer"
    assert api.get(path).status_code == 200


def test_the_token_never_reaches_the_log(api):
    wrong = api.token[:-1] + ("Y" if api.token.endswith("Z") else "Z")  # one character off, whatever the token
    assert api.get("/datasets", token=wrong).status_code == 401
    assert api.get("/datasets").status_code == 200
    urls = [f["url"] for f in api.get(f"/datasets/{TRAINING}/latest").json()["files"]]
    assert requests.get(urls[0], timeout=30).status_code == 200
    log = api.log.read_text()
    assert 'GET /datasets HTTP/1.1" 401' in log and 'GET /datasets HTTP/1.1" 200' in log and "GET /files/" in log
    assert api.token not in log and api.token[:-1] not in log
    assert parse_qs(urlsplit(urls[0]).query)["signature"][0] not in log


# ------------------------------------------------------------------------------------ listing
def test_the_listing_shows_every_table_and_its_quarters(api, delivery_lake):
    datasets = {d["table"]: d for d in api.get("/datasets").json()["datasets"]}
    assert datasets[TRAINING]["quarters"] == list(DELIVERY_QUARTERS)
    assert datasets[TRAINING]["latest"] == DELIVERY_QUARTERS[-1]
    assert datasets["silver/operational_events_quarantine"]["layer"] == "silver"
    lake = Path(delivery_lake.lake_root)
    in_lake = {f"{t.parent.name}/{t.name}" for t in lake.glob("*/*") if (t / "_delta_log").is_dir()}
    assert {t for t, d in datasets.items() if d["quarters"]} == in_lake


def test_latest_is_the_last_quarter_with_its_rows_schema_and_files(api, delivery_lake):
    latest = api.get(f"/datasets/{TRAINING}/latest").json()
    last = DELIVERY_QUARTERS[-1]
    assert latest["quarter"] == last and latest["partition_key"] == to_key(last)
    assert latest["version"] == DeltaTable(f"{delivery_lake.lake_root}/{TRAINING}").version()
    assert latest["row_count"] == lake_rows(delivery_lake.lake_root, TRAINING, last).num_rows > 20
    schema = {c["name"]: c for c in latest["schema"]}
    assert schema["txn_count"]["type"] == "int64" and schema["feature_cutoff"]["type"] == "timestamp[us, tz=UTC]"
    assert "lookback" in schema["txn_count"]["description"]
    assert sorted(f["size"] for f in latest["files"]) == current_sizes(delivery_lake.lake_root, TRAINING, last)
    assert api.get(f"/datasets/{TRAINING}/{to_key(DELIVERY_QUARTERS[-1])}").json()["row_count"] == latest["row_count"]


CUSTOMER_TABLES = (
    "bronze/customers",
    "silver/customer_profiles",
    "silver/customer_profiles_quarantine",
    "gold/customer_history",
)
"""The customers source's tables: served like every lake table, from their declarations alone."""


def test_the_customer_tables_are_listed_and_the_history_served_like_every_table(api, delivery_lake):
    """The reference run had the customers source: each of its tables is listed with the quarters the
    run materialised, and a quarter of the golden record downloads exactly its Delta rows."""
    datasets = {d["table"]: d for d in api.get("/datasets").json()["datasets"]}
    for table in CUSTOMER_TABLES:
        assert datasets[table]["quarters"] == list(DELIVERY_QUARTERS), table
    quarter = DELIVERY_QUARTERS[-1]
    described = api.get(f"/datasets/gold/customer_history/{quarter}").json()
    lake = lake_rows(delivery_lake.lake_root, "gold/customer_history", quarter)
    assert described["quarter"] == quarter and described["row_count"] == lake.num_rows > 20
    assert [c["name"] for c in described["schema"]] == lake.column_names
    assert {c["name"]: c["type"] for c in described["schema"]}["valid_to"] == "timestamp[us, tz=UTC]"
    downloaded = read_urls(described["files"])
    key = ("customer_id", "version")
    assert sorted(downloaded.to_pylist(), key=lambda r: [r[k] for k in key]) == sorted(
        lake.to_pylist(), key=lambda r: [r[k] for k in key]
    )
    assert api.get("/datasets/gold/customer_history/latest").json()["quarter"] == quarter


@pytest.mark.parametrize("quarter", DELIVERY_QUARTERS)
def test_every_url_of_a_quarter_downloads_the_lakes_rows(api, delivery_lake, quarter):
    described = api.get(f"/datasets/{TRAINING}/{quarter}").json()
    downloaded = read_urls(described["files"])
    lake = lake_rows(delivery_lake.lake_root, TRAINING, quarter)
    assert downloaded.num_rows == described["row_count"] == lake.num_rows
    assert sorted_rows(downloaded) == sorted_rows(lake)


# ------------------------------------------------------------------------------- signed urls
def _file_url(api) -> str:
    return api.get(f"/datasets/{TRAINING}/2024-Q2").json()["files"][0]["url"]


def test_a_tampered_url_gets_403(api):
    url = _file_url(api)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    flipped = query["signature"][:-1] + ("0" if query["signature"][-1] != "0" else "1")
    later = str(int(query["expires"]) + 3600)
    other_quarter = parts.path.replace("quarter=2024-Q2", "quarter=2024-Q3")
    for target in (
        f"{parts.path}?{urlencode({**query, 'signature': flipped})}",
        f"{parts.path}?{urlencode({**query, 'expires': later})}",
        f"{other_quarter}?{parts.query}",
    ):
        response = requests.get(f"{api.base_url}{target}", timeout=30)
        assert response.status_code == 403, target
        assert "signature does not match" in response.json()["detail"]
    assert requests.get(url, timeout=30).status_code == 200


def test_an_expired_url_gets_403(api):
    key = urlsplit(_file_url(api)).path.removeprefix("/files/")
    expired = int(time.time()) - 5
    signature = UrlSigner(api.token).signature(key, expired)
    response = requests.get(
        f"{api.base_url}/files/{key}?expires={expired}&signature={signature}",
        timeout=30,
    )
    assert response.status_code == 403 and "expired" in response.json()["detail"]
    forged = UrlSigner("another-token").signature(key, expired + 3600)
    assert (
        requests.get(
            f"{api.base_url}/files/{key}?expires={expired + 3600}&signature={forged}",
            timeout=30,
        ).status_code
        == 403
    )


# ------------------------------------------------------------------------------- bad requests
@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        (
            "/datasets/gold/no_such_table/2024-Q2",
            404,
            "unknown table 'gold/no_such_table'",
        ),
        (f"/datasets/{TRAINING}/2024-Q5", 400, "is not a quarter"),
        (f"/datasets/{TRAINING}/2024-02-01", 400, "is not a quarter"),
        (f"/datasets/{TRAINING}/yesterday", 400, "is not a quarter"),
        (
            f"/datasets/{TRAINING}/2019-Q1",
            404,
            "no materialised quarter 2019-Q1; it has: 2024-Q1, 2024-Q2, 2024-Q3",
        ),
        ("/datasets/%2e%2e/%2e%2e/2024-Q2", 404, "unknown table '../..'"),
        ("/datasets/gold/..%2F..%2Fsilver/2024-Q2", 404, ""),
        (f"/datasets/{TRAINING}/..%2F..%2F..%2Fetc%2Fpasswd", 404, ""),
        ("/datasets/../../../etc/passwd", 404, ""),
    ],
)
def test_bad_dataset_requests_get_a_4xx_with_a_clear_message(api, path, status, message):
    code, body = api.raw(path)
    assert code == status, body
    assert message in body["detail"]


@pytest.mark.parametrize(
    "key",
    [
        "../../../../etc/passwd",
        "..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "gold/training_set/quarter=2024-Q2/..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
        "gold/training_set/quarter=2024-Q2/../../../../../etc/hostname",
        "gold/training_set/quarter=2024-Q2/%2e%2e%2F%2e%2e%2F%2e%2e%2Fconfig.yaml",
        "gold/training_set/../../../../../../etc/passwd.parquet",
    ],
)
def test_file_urls_outside_the_lake_are_refused_even_when_signed(api, key):
    """Signed with the server's own key: the layout check alone keeps them out of the lake."""
    expires = int(time.time()) + 600
    decoded = key.replace("%2F", "/").replace("%2e", ".")
    signature = UrlSigner(api.token).signature(decoded, expires)
    connection = http.client.HTTPConnection(urlsplit(api.base_url).netloc, timeout=30)
    try:
        connection.request("GET", f"/files/{key}?expires={expires}&signature={signature}")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert 400 <= response.status < 500, body
    assert b"root:" not in body and b"PAR1" not in body


def test_a_symlink_out_of_the_lake_is_not_served_even_when_signed(api, delivery_lake, tmp_path):
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.table({"secret": ["outside the lake"]}), outside)
    key = f"{TRAINING}/quarter=2024-Q2/zz-link.parquet"
    link = Path(delivery_lake.lake_root, key)
    link.symlink_to(outside)
    try:
        expires = int(time.time()) + 600
        signature = UrlSigner(api.token).signature(key, expires)
        response = requests.get(
            f"{api.base_url}/files/{key}?expires={expires}&signature={signature}",
            timeout=30,
        )
        assert response.status_code == 404 and b"outside the lake" not in response.content
    finally:
        link.unlink()


def test_serve_refuses_to_start_without_a_token(delivery_lake, tmp_path):
    config_file = write_config(tmp_path / "config.yaml", lake_config(delivery_lake.lake_root, tmp_path))
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV} | {"BATCH_PLATFORM_CONFIG": str(config_file)}
    done = subprocess.run(
        [CLI, "serve", "--port", str(free_port())],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and f"set {TOKEN_ENV}" in done.stderr


# ------------------------------------------------------------------------------ request edges
@pytest.mark.parametrize(
    "name",
    ["token", "access_token", "ACCESS_TOKEN", "api_key", "Api-Key", "apiKey", "tok%65n", "access%5Ftoken",
     "to%256Ben", "password", "client_secret", "X-Amz-Security-Token", "auth"],
)  # fmt: skip
def test_a_credential_in_the_query_string_gets_401_and_never_reaches_the_log(versioned_api, name):
    """Whatever the header says: a credential in a url is written down by every proxy and log on
    its way, so the API takes the token from the Authorization header only."""
    api, _ = versioned_api
    for path in ("/datasets", f"/datasets/{TRAINING}/latest", "/health", "/docs"):
        code, body = api.raw(f"{path}?{name}={api.token}")  # with the right Authorization header too
        assert code == 401 and "Authorization: Bearer" in body["detail"], (path, code)
        anonymous = requests.get(f"{api.base_url}{path}?{name}={api.token}", timeout=30)
        assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"] == "Bearer"
    log = api.log.read_text()
    assert f'GET /health?{name}=*** HTTP/1.1" 401' in log
    assert api.token not in log


def test_a_signature_is_redacted_from_the_log_however_its_name_is_encoded(versioned_api):
    api, _ = versioned_api
    url = api.get(f"/datasets/{TRAINING}/2024-Q3").json()["files"][0]["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for spelled in ("sig%6Eature", "%73ignature", "signature"):
        connection = http.client.HTTPConnection(parts.netloc, timeout=60)  # sends the target byte for byte
        try:
            connection.request("GET", f"{parts.path}?expires={query['expires']}&{spelled}={query['signature']}")
            assert connection.getresponse().status == 200, spelled  # the server reads the same parameter
        finally:
            connection.close()
    log = api.log.read_text()
    assert 'sig%6Eature=*** HTTP/1.1" 200' in log and '%73ignature=*** HTTP/1.1" 200' in log
    assert query["signature"] not in log


def _datasets_urls(api: ApiServer, host: str) -> list[str]:
    headers = {"Authorization": f"Bearer {api.token}", "Host": host}
    described = requests.get(f"{api.base_url}/datasets/{TRAINING}/2024-Q3", headers=headers, timeout=60)
    assert described.status_code == 200, described.text
    return [f["url"] for f in described.json()["files"]]


def test_file_urls_start_with_the_public_url_never_the_requests_host(versioned_api, tmp_path):
    """Behind a reverse proxy the API is reached at another address than it binds: `api.public_url`
    (or `serve --public-url`, which wins) is what its urls start with. The Host header is the
    client's to write, so a url built from it would point wherever the client chose."""
    api, lake = versioned_api
    default = _datasets_urls(api, "evil.example.com")
    assert default and all(url.startswith(f"{api.base_url}/files/{TRAINING}/quarter=2024-Q3/") for url in default)
    public = "https://data.example.com/lake-api"
    raw = {**lake_config(lake.root, tmp_path), "api": {"public_url": public + "/"}}
    for args, expected in (((), public), (("--public-url", "https://other.example.org"), "https://other.example.org")):
        server = start_api(write_config(tmp_path / "config.yaml", raw), tmp_path, args=args)
        try:
            urls = _datasets_urls(server, "evil.example.com")
        finally:
            stop_api(server)
        assert urls and all(url.startswith(f"{expected}/files/{TRAINING}/quarter=2024-Q3/") for url in urls), urls
        assert [urlsplit(url).path.removeprefix("/lake-api") for url in urls] == [urlsplit(u).path for u in default]
    refused = subprocess.run(
        [CLI, "serve", "--port", str(free_port()), "--public-url", "data.example.com"],
        env={**os.environ, "BATCH_PLATFORM_CONFIG": str(tmp_path / "config.yaml"), TOKEN_ENV: "t"},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "--public-url: 'data.example.com' is not an http(s):// URL" in refused.stderr


def _status_line(api: ApiServer, padding: int) -> bytes:
    """The status line the server answers a request whose head carries `padding` bytes of one
    header with, or b"" when it closes the connection first."""
    with socket.create_connection(urlsplit(api.base_url).netloc.split(":"), timeout=60) as sock:
        try:
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: api\r\nX-Padding: " + b"a" * padding + b"\r\n\r\n")
            return sock.recv(64).split(b"\r\n")[0]
        except (ConnectionResetError, BrokenPipeError):
            return b""


def test_a_request_head_over_16_kib_gets_a_4xx_or_a_closed_connection(versioned_api):
    """`api.MAX_HEAD_BYTES` (16 KiB) for the request line and headers together."""
    api, _ = versioned_api
    assert _status_line(api, 15 * 1024) == b"HTTP/1.1 200 OK"
    for padding in (17 * 1024, 64 * 1024, 1024 * 1024, 16 * 1024 * 1024):
        status = _status_line(api, padding)
        assert status == b"" or status.split(b" ")[1].startswith(b"4"), (padding, status)
    many = {f"X-Header-{i}": "a" * 100 for i in range(200)}  # 20 KiB in 200 headers
    assert requests.get(f"{api.base_url}/health", headers=many, timeout=30).status_code in (400, 431)
    assert requests.get(f"{api.base_url}/health", timeout=30).status_code == 200


# ---------------------------------------------------------------------------------- S3 lake
@pytest.fixture(scope="module")
def s3_api(delivery_lake, s3_server, tmp_path_factory):
    """The same lake copied to a real S3 server (SeaweedFS on loopback), served by its own API."""
    workdir = tmp_path_factory.mktemp("api-s3")
    client, bucket = s3_server.client(), "delivery"
    s3_server.bucket(bucket)
    local = Path(delivery_lake.lake_root)
    for path in local.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"lake/{path.relative_to(local)}")
    s3 = {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region, "path_style_access": True,
          "access_key_id": "${API_TEST_S3_KEY}", "secret_access_key": "${API_TEST_S3_SECRET}"}  # fmt: skip
    config_file = write_config(workdir / "config.yaml", lake_config(f"s3a://{bucket}/lake", workdir, s3=s3))
    env = {
        "API_TEST_S3_KEY": s3_server.access_key_id,
        "API_TEST_S3_SECRET": s3_server.secret_access_key,
    }
    server = start_api(config_file, workdir, env)
    try:
        yield server
    finally:
        stop_api(server)


@pytest.mark.s3
def test_an_s3_lake_is_served_with_presigned_urls_that_download_its_rows(s3_api, s3_server, delivery_lake):
    datasets = {d["table"]: d for d in s3_api.get("/datasets").json()["datasets"]}
    assert datasets[TRAINING]["quarters"] == list(DELIVERY_QUARTERS)
    latest = s3_api.get(f"/datasets/{TRAINING}/latest").json()
    assert latest["quarter"] == DELIVERY_QUARTERS[-1]
    for quarter in DELIVERY_QUARTERS:
        described = s3_api.get(f"/datasets/{TRAINING}/{quarter}").json()
        assert all(
            f["url"].startswith(f"{s3_server.endpoint_url}/delivery/lake/{TRAINING}/") for f in described["files"]
        )
        assert all("X-Amz-Signature=" in f["url"] for f in described["files"])
        lake = lake_rows(delivery_lake.lake_root, TRAINING, quarter)
        downloaded = read_urls(described["files"])
        assert downloaded.num_rows == described["row_count"] == lake.num_rows
        assert sorted_rows(downloaded) == sorted_rows(lake)
    assert s3_server.secret_access_key not in s3_api.log.read_text()


@pytest.mark.s3
def test_a_tampered_presigned_url_gets_403(s3_api):
    url = s3_api.get(f"/datasets/{TRAINING}/2024-Q2").json()["files"][0]["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query["X-Amz-Expires"] = str(int(query["X-Amz-Expires"]) * 2)
    assert (
        requests.get(
            f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}",
            timeout=30,
        ).status_code
        == 403
    )
    other = url.replace("quarter%3D2024-Q2", "quarter%3D2024-Q3").replace("quarter=2024-Q2", "quarter=2024-Q3")
    assert other != url and requests.get(other, timeout=30).status_code == 403
    assert requests.get(url, timeout=30).status_code == 200


# ------------------------------------------------------------------- the table's current version
def rows_of(lake, quarter: str, version: int) -> list[dict]:
    """The rows `delta_fixtures` committed to `gold/training_set` at `version`, as the files hold them."""
    rows = [{k: v for k, v in row.items() if k != "quarter"} for row in lake.rows[(TRAINING, quarter, version)]]
    return sorted(rows, key=lambda row: row["customer_id"])


def downloaded_rows(files: list[dict]) -> list[dict]:
    return sorted_rows(read_urls(files))


@pytest.fixture(scope="module")
def versioned_api(delta_lake, tmp_path_factory):
    """The API over a copy of `delta_fixtures.delta_lake`, which the tests commit to."""
    workdir = tmp_path_factory.mktemp("api-delta")
    lake = copy_lake(delta_lake, workdir / "lake")
    server = start_api(write_config(workdir / "config.yaml", lake_config(lake.root, workdir)), workdir)
    try:
        yield server, lake
    finally:
        stop_api(server)


def test_a_quarters_files_are_those_of_the_tables_current_version_never_the_replaced_ones(versioned_api, spark):
    """Re-materialising a quarter leaves the old files in its folder (Delta keeps them for time travel
    until VACUUM): the API lists the new ones only; a url handed out before still gets its file."""
    api, lake = versioned_api
    folder = Path(lake.root, TRAINING, "quarter=2024-Q2")
    before = api.get(f"/datasets/{TRAINING}/2024-Q2").json()
    assert before["version"] == 1 and before["row_count"] == 32
    assert len(list(folder.glob("*.parquet"))) > len(before["files"])  # version 0's files are still there
    assert downloaded_rows(before["files"]) == rows_of(lake, "2024-Q2", 1)

    new_rows = model_rows(TRAINING, "2024-Q2", customers(25, 500), 4)
    assert commit_rows(spark, lake.root, TRAINING, {"2024-Q2": new_rows}, "run-c") == 2
    after = api.get(f"/datasets/{TRAINING}/2024-Q2").json()
    assert after["version"] == 2 and after["row_count"] == 25
    keys = {urlsplit(f["url"]).path for f in after["files"]}
    assert keys.isdisjoint(urlsplit(f["url"]).path for f in before["files"])
    assert sorted(f["size"] for f in after["files"]) == current_sizes(lake.root, TRAINING, "2024-Q2")
    expected = sorted(
        ({k: v for k, v in r.items() if k != "quarter"} for r in new_rows), key=lambda r: r["customer_id"]
    )
    assert downloaded_rows(after["files"]) == expected
    assert len(list(folder.glob("*.parquet"))) == len(after["files"]) + len(before["files"]) + 1  # + version 0's
    assert downloaded_rows(before["files"]) == rows_of(lake, "2024-Q2", 1)  # immutable until VACUUM
    untouched = api.get(f"/datasets/{TRAINING}/2024-Q3").json()
    assert untouched["version"] == 2 and downloaded_rows(untouched["files"]) == rows_of(lake, "2024-Q3", 1)


def test_the_listing_and_an_empty_quarter_come_from_the_delta_log(versioned_api):
    api, _ = versioned_api
    datasets = {d["table"]: d for d in api.get("/datasets").json()["datasets"]}
    assert datasets[TRAINING]["quarters"] == ["2024-Q1", "2024-Q2", "2024-Q3"]  # 2024-Q1: materialised empty
    assert datasets["ml/churn_scores"]["quarters"] == ["2024-Q2", "2024-Q3"]
    assert datasets["gold/customer_features"]["quarters"] == [] and datasets["gold/customer_features"]["latest"] is None
    empty = api.get(f"/datasets/{TRAINING}/2024-Q1").json()
    assert empty["row_count"] == 0 and empty["files"] == []
    schema = {c["name"]: c for c in empty["schema"]}
    assert "quarter" not in schema and schema["feature_cutoff"]["type"] == "timestamp[us, tz=UTC]"
    assert "lookback" in schema["txn_count"]["description"]
    code, body = api.raw(f"/datasets/{TRAINING}/2024-Q4")
    assert code == 404 and "has no materialised quarter 2024-Q4; it has: 2024-Q1, 2024-Q2, 2024-Q3" in body["detail"]
    code, body = api.raw("/datasets/gold/customer_features/latest")
    assert code == 404 and "gold/customer_features has no materialised quarter yet" in body["detail"]


@pytest.mark.s3
def test_an_s3_lake_presigns_the_files_of_the_current_version_only(delta_lake, s3_server, tmp_path):
    client, bucket = s3_server.client(), "api-delta"
    s3_server.bucket(bucket)
    for path in Path(delta_lake.root).rglob("*"):
        if path.is_file():
            client.upload_file(str(path), bucket, f"lake/{path.relative_to(delta_lake.root)}")
    s3 = {"endpoint_url": s3_server.endpoint_url, "region": s3_server.region, "path_style_access": True,
          "access_key_id": "${API_TEST_S3_KEY}", "secret_access_key": "${API_TEST_S3_SECRET}"}  # fmt: skip
    config = write_config(tmp_path / "config.yaml", lake_config(f"s3a://{bucket}/lake", tmp_path, s3=s3))
    env = {"API_TEST_S3_KEY": s3_server.access_key_id, "API_TEST_S3_SECRET": s3_server.secret_access_key}
    server = start_api(config, tmp_path, env)
    try:
        described = server.get(f"/datasets/{TRAINING}/2024-Q2").json()
        listed = client.list_objects_v2(Bucket=bucket, Prefix=f"lake/{TRAINING}/quarter=2024-Q2/")["Contents"]
        assert len([o for o in listed if o["Key"].endswith(".parquet")]) > len(described["files"])
        assert all("X-Amz-Signature=" in f["url"] for f in described["files"])
        assert described["version"] == 1 and downloaded_rows(described["files"]) == rows_of(delta_lake, "2024-Q2", 1)
        datasets = {d["table"]: d["quarters"] for d in server.get("/datasets").json()["datasets"]}
        assert datasets[TRAINING] == ["2024-Q1", "2024-Q2", "2024-Q3"]
    finally:
        stop_api(server)
