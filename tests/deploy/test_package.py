"""`pip install .` installs one namespace, `offramp`, typed (PEP 561) and with its data files."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from offramp.devstack.binaries import PROJECT_ROOT


def build_wheel(out: Path) -> zipfile.ZipFile:
    # The same build `make deps` runs (isolated, setuptools from the package index).
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(out), "."],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = out.glob("offramp_engine-*.whl")
    return zipfile.ZipFile(wheel)


def test_the_wheel_installs_only_the_offramp_namespace_typed_with_its_artifacts(
    tmp_path: Path,
) -> None:
    names = set(build_wheel(tmp_path).namelist())

    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"offramp", "offramp_engine-0.1.0.dist-info"}
    assert "offramp/py.typed" in names
    for module in ("workflows/order/workflow.py", "activities/chain.py", "worker/__main__.py"):
        assert f"offramp/{module}" in names
    assert "offramp/chain/artifacts/TestUSDC.json" in names
    assert not any(name.startswith("offramp/") and "/tests/" in name for name in names)
