"""Deterministic orchestration only. No module here imports an I/O library (httpx, web3, ...):
types from such modules are imported through `workflow.unsafe.imports_passed_through()`."""
