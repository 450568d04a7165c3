"""Compile contracts/TestUSDC.sol with the pinned solc-js into the committed artifact.

Offline: solc-js ships its compiler in node_modules. Run with `make token`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "contracts" / "TestUSDC.sol"
ARTIFACT = ROOT / "offramp" / "chain" / "artifacts" / "TestUSDC.json"


def compile_token() -> dict[str, object]:
    solc_pkg = ROOT / "node_modules" / "solc"
    version = json.loads((solc_pkg / "package.json").read_text())["version"]
    standard_input = {
        "language": "Solidity",
        "sources": {"TestUSDC.sol": {"content": SOURCE.read_text()}},
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"TestUSDC": ["abi", "evm.bytecode.object"]}},
        },
    }
    out = subprocess.run(
        ["node", str(solc_pkg / "solc.js"), "--standard-json"],
        input=json.dumps(standard_input),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    result = json.loads(out.stdout[out.stdout.index("{") :])
    errors = [e for e in result.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise SystemExit("solc failed:\n" + "\n".join(e["formattedMessage"] for e in errors))
    contract = result["contracts"]["TestUSDC.sol"]["TestUSDC"]
    return {
        "contractName": "TestUSDC",
        "compiler": f"solc-js {version}",
        "settings": standard_input["settings"],
        "abi": contract["abi"],
        "bytecode": "0x" + contract["evm"]["bytecode"]["object"],
    }


def main() -> int:
    artifact = compile_token()
    ARTIFACT.write_text(json.dumps(artifact, indent=2) + "\n")
    print(f"wrote {ARTIFACT.relative_to(ROOT)} ({artifact['compiler']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
