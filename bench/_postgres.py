"""A throwaway PostgreSQL database for the Prefect API server of a benchmark.

Prefect's server uses SQLite unless PREFECT_API_DATABASE_CONNECTION_URL names
another database. Under concurrent writes SQLite reports the database as busy
and the server responds with HTTP 503, which Prefect's client retries after a
back-off; PostgreSQL shows whether a benchmark's result depends on that.

The server runs from the PostgreSQL binaries installed on the machine, with
its data in a new temporary directory, on a free loopback port. PostgreSQL
refuses to run as root, so as root it runs as the `postgres` user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from _common import Children, child_env, free_port, run_bounded

__all__ = ["start_postgres"]

DATABASE = "prefect"
ROLE = "bench"
READY_TIMEOUT = 60.0
COMMAND_TIMEOUT = 120.0


def postgres_bin() -> Path:
    """Return the directory of `initdb` and `postgres`.

    Raises:
        SystemExit: When no PostgreSQL installation is found.
    """
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    installed = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not installed:
        raise SystemExit(
            "PostgreSQL is not installed (no initdb); install it or run the "
            "benchmarks on SQLite"
        )
    return installed[-1].parent


def start_postgres(children: Children) -> tuple[str, Path]:
    """Start PostgreSQL with an empty `prefect` database.

    Returns:
        The SQLAlchemy URL for Prefect and the temporary directory, which the
        caller removes after `children` stopped the server.

    Raises:
        RuntimeError: When the server does not accept connections in time.
    """
    binaries = postgres_bin()
    root = Path(tempfile.mkdtemp(prefix="pdfco-bench-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    env = child_env()

    initdb = [*as_owner, str(binaries / "initdb"), "-D", str(data), "-U", ROLE]
    result = run_bounded([*initdb, "--auth=trust", "-E", "UTF8"], env, COMMAND_TIMEOUT)
    if result.returncode != 0:
        raise RuntimeError(f"initdb failed: {result.stderr[-2000:]}")

    port = free_port()
    server = [*as_owner, str(binaries / "postgres"), "-D", str(data)]
    server += ["-p", str(port), "-k", str(root), "-c", "listen_addresses=127.0.0.1"]
    with (root / "postgres.log").open("w") as log:
        children.start(server, env=env, stdout=log, stderr=subprocess.STDOUT)
    _create_database(binaries, port, env)
    return f"postgresql+asyncpg://{ROLE}@127.0.0.1:{port}/{DATABASE}", root


def _create_database(binaries: Path, port: int, env: dict[str, str]) -> None:
    """Create the database once the server accepts connections."""
    command = [str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port)]
    command += ["-U", ROLE, DATABASE]
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if run_bounded(command, env, COMMAND_TIMEOUT).returncode == 0:
            return
        time.sleep(0.5)
    raise RuntimeError(
        f"PostgreSQL on port {port} did not accept connections within "
        f"{READY_TIMEOUT:.0f} s"
    )
