"""A throwaway PostgreSQL cluster for the tests (and the publishing benchmark).

`initdb` and `pg_ctl` refuse to run as root, so when the tests run as root both run as the
`postgres` user (Debian's `postgresql` package creates it) on a data directory owned by it. The
server listens on 127.0.0.1 only, on a free port, with its unix socket in its own temp dir, and
accepts a password-authenticated test role (scram-sha-256). The session fixture `postgres_server`
stops it by its postmaster PID at the end of the session, also when a test fails.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from batch_platform_tests.procs import free_port

STARTUP_SECONDS = 60
SERVICE_USER = "postgres"


def pg_bin(name: str) -> str:
    """A PostgreSQL server binary: Debian keeps them in /usr/lib/postgresql/<version>/bin."""
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[4]),
    )
    if found:
        return found[-1]
    on_path = shutil.which(name)
    if on_path:
        return on_path
    raise RuntimeError(f"PostgreSQL's {name} is missing: install Debian's `postgresql` (.ci/run does)")


def _as_service_user(command: list[str]) -> list[str]:
    return ["runuser", "-u", SERVICE_USER, "--", *command] if os.geteuid() == 0 else command


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    password: str
    dbname: str
    datadir: Path
    pid: int

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def dsn_with_env(self, variable: str) -> str:
        """The DSN as the config file holds it: the password read from environment `variable`."""
        return f"postgresql://{self.user}:${{{variable}}}@{self.host}:{self.port}/{self.dbname}"

    def connect(self, **kwargs):
        import psycopg

        return psycopg.connect(self.dsn, **kwargs)


def start_postgres(workdir: Path) -> PostgresServer:
    """initdb + pg_ctl start on 127.0.0.1:<free port>; a role `platform` with a random password."""
    if os.geteuid() == 0:
        owner = pwd.getpwnam(SERVICE_USER)
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
    datadir = workdir / "data"
    password = secrets.token_urlsafe(18)
    pwfile = workdir / "superuser.pw"
    pwfile.write_text(password + "\n")
    if os.geteuid() == 0:
        os.chown(pwfile, owner.pw_uid, owner.pw_gid)
    pwfile.chmod(0o600)
    subprocess.run(
        _as_service_user([pg_bin("initdb"), "-D", str(datadir), "-U", "platform", f"--pwfile={pwfile}",
                          "--auth=scram-sha-256", "--encoding=UTF8", "--locale=C.UTF-8"]),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    pwfile.unlink()
    port = free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={workdir} -c fsync=off"
    log = workdir / "postgres.log"
    subprocess.run(
        _as_service_user([pg_bin("pg_ctl"), "-D", str(datadir), "-l", str(log), "-o", options, "-w",
                          "-t", str(STARTUP_SECONDS), "start"]),
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    pid = int((datadir / "postmaster.pid").read_text().split("\n", 1)[0])
    server = PostgresServer("127.0.0.1", port, "platform", password, "postgres", datadir, pid)
    try:
        with server.connect(autocommit=True) as conn:
            conn.execute("CREATE DATABASE platform")
    except BaseException:
        stop_postgres(server)
        raise
    return PostgresServer("127.0.0.1", port, "platform", password, "platform", datadir, pid)


def stop_postgres(server: PostgresServer) -> None:
    """Fast shutdown of the postmaster by its PID; SIGKILL if it lingers."""
    try:
        os.kill(server.pid, signal.SIGINT)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.kill(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(server.pid, signal.SIGKILL)


class TemporaryPostgres:
    """`with TemporaryPostgres() as server:` — a cluster in a temp dir, removed afterwards."""

    def __enter__(self) -> PostgresServer:
        self._dir = Path(tempfile.mkdtemp(prefix="batch-platform-pg-"))
        try:
            self.server = start_postgres(self._dir)
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise
        return self.server

    def __exit__(self, *exc) -> None:
        stop_postgres(self.server)
        shutil.rmtree(self._dir, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server():
    with TemporaryPostgres() as server:
        yield server
