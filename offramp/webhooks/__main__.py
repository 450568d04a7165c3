"""`python -m offramp.webhooks`: the receiver, as `offramp webhooks` runs it (local stack child)."""

from __future__ import annotations

import sys

from offramp.webhooks.server import main

if __name__ == "__main__":
    sys.exit(main())
