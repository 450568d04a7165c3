"""Off-ramp engine domain package: everything workflows and activities share.

Plain Python: it imports no Temporal workflow code and can be used by wallet backends directly
(typed: `py.typed`). The project's layout (design.md) keeps `workflows/`, `activities/` and
`worker/` as top-level packages beside it.
"""
