"""`pip install .` installs the project's packages (design.md's top-level layout) and nothing else,
with `offramp` typed (PEP 561) and its data files."""

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


def test_the_wheel_installs_the_project_packages_typed_with_their_artifacts(
    tmp_path: Path,
) -> None:
    names = set(build_wheel(tmp_path).namelist())

    top_level = {name.split("/")[0] for name in names}
    assert top_level == {
        "offramp",
        "workflows",
        "activities",
        "worker",
        "offramp_engine-0.1.0.dist-info",
    }
    assert "offramp/py.typed" in names
    for module in ("workflows/order/workflow.py", "activities/chain.py", "worker/__main__.py"):
        assert module in names
    assert "offramp/chain/artifacts/TestUSDC.json" in names
    assert not any("tests/" in name for name in names)
