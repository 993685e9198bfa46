"""A throw-away PostgreSQL server for tests: initdb into a temporary folder, pg_ctl start/stop."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import time
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine (install the `postgresql` package)."""


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise PostgresUnavailable("PostgreSQL server binaries not found: install the `postgresql` Debian package")
    return Path(candidates[-1]).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TempPostgres:
    """A private PostgreSQL cluster on 127.0.0.1:<port>; run as `postgres` when we are root."""

    def __init__(self, base: Path, port: int | None = None) -> None:
        self.base = base
        self.data = base / "data"
        self.port = port or free_port()
        self.bin = _bin_dir()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://tawasul:tawasul@127.0.0.1:{self.port}/tawasul"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=check, cwd="/")

    def init(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        if self._as_postgres:
            entry = pwd.getpwnam("postgres")
            os.chown(self.base, entry.pw_uid, entry.pw_gid)
        password_file = self.base / "pw"
        password_file.write_text("tawasul\n", encoding="utf-8")
        if self._as_postgres:
            os.chown(password_file, pwd.getpwnam("postgres").pw_uid, -1)
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "tawasul",
            "-A",
            "md5",
            f"--pwfile={password_file}",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.base} -c fsync=off"
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.base / "log"), "-w", "start"
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            result = self._run(str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), check=False)
            if result.returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError("temporary PostgreSQL did not become ready")

    def create_database(self) -> None:
        env_password = {"PGPASSWORD": "tawasul"}
        command = [str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "tawasul", "tawasul"]
        subprocess.run(command, capture_output=True, text=True, check=True, env={**os.environ, **env_password})

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop", check=False)
