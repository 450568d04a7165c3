"""Task queues by trust. Signing (and re-sending signed bytes) runs on its own task queue, polled
only by workers that hold a hot-wallet key; everything else (provider calls, checks, chain reads,
workflow tasks) runs on the main queue, where keyless workers may poll.

The signer queue's name derives from the main queue's, so a workflow (which reads no
configuration) and the worker agree on it by construction: a workflow knows its own task queue
from `workflow.info()`."""

from __future__ import annotations

SIGNER_SUFFIX = "-signer"

# What the signer queue serves: sign_and_broadcast signs every time; await_transaction signs
# only when given `resend` (the bounded wait re-sends the latest attempt itself), and is
# scheduled there only then (without `resend` it is a chain read, on the main queue).
SIGNER_QUEUE_ACTIVITIES = frozenset({"sign_and_broadcast", "await_transaction"})
# Never registered on a keyless worker, on any queue.
KEY_ACTIVITIES = frozenset({"sign_and_broadcast"})


def signer_task_queue(main_queue: str) -> str:
    """The signer queue that belongs to `main_queue`."""
    return f"{main_queue}{SIGNER_SUFFIX}"
