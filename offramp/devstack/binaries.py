"""Where the project's pinned binaries live: next to the venv's Python, and in node_modules."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class MissingBinary(FileNotFoundError):
    pass


def _venv_bin(name: str) -> Path:
    # Next to sys.executable, not shutil.which: a venv that is not on PATH would make the
    # Temporal SDK fall back to downloading a server, which fails without internet.
    path = Path(sys.executable).parent / name
    if not path.exists():
        raise MissingBinary(f"{name} not found at {path}: run `make deps` (pip package missing)")
    return path


def temporal_cli() -> Path:
    return _venv_bin("temporal")


def temporal_test_server() -> Path:
    return _venv_bin("temporal-test-server")


def anvil(root: Path = PROJECT_ROOT) -> Path:
    """The anvil binary shipped by npm @foundry-rs/anvil's platform package (no node wrapper,
    so signals reach anvil itself)."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        platform.machine().lower(), platform.machine().lower()
    )
    system = {"linux": "linux", "darwin": "darwin"}.get(sys.platform, sys.platform)
    direct = root / "node_modules" / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if direct.exists():
        return direct
    wrapper = root / "node_modules" / ".bin" / "anvil"
    if wrapper.exists():
        return wrapper
    raise MissingBinary(f"anvil not found under {root / 'node_modules'}: run `make deps` (npm ci)")
