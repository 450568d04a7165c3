"""`python -m worker.set_current`: make this configuration's build (OFFRAMP_DEPLOYMENT_NAME,
OFFRAMP_BUILD_ID) the deployment's current version, once its workers poll. The compose file's
one-shot `worker-version` job; an operator may use the Temporal CLI instead
(`temporal worker deployment set-current-version`, README "Deploying a workflow change")."""

from __future__ import annotations

import asyncio
import os
import sys

from offramp.config import ConfigError, load_settings
from offramp.temporal_client import connect
from worker import versioning

WAIT_SECONDS = 300.0


async def _main() -> int:
    try:
        settings = load_settings()
        client = await connect()
    except (ConfigError, RuntimeError) as exc:
        print(f"offramp set-current: {exc}", file=sys.stderr)
        return 2
    version = versioning.deployment_version(settings)
    try:
        await versioning.set_current_version(client, version, wait_seconds=WAIT_SECONDS)
    except TimeoutError as exc:
        print(f"offramp set-current: {exc}", file=sys.stderr)
        return 1
    print(f"current version of {version.deployment_name}: {version.build_id}")
    return 0


if __name__ == "__main__":
    code = asyncio.run(_main())
    # As worker/__main__.py: leave without interpreter finalization, which the SDK's core
    # threads can hang or abort (sdk-python #300).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
