"""The off-ramp engine.

`workflows/` (deterministic orchestration), `activities/` (every side effect) and `worker/` (the
process that hosts them) sit beside the plain-Python domain packages (`orders/`, `providers/`,
`chain/`, ...), which wallet backends can use directly: importing `offramp` or its domain packages
imports no workflow code.
"""
