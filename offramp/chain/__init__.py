"""Sending value on EVM chains exactly once: models, address checks, fees, error classification,
the signer and RPC helpers. Plain Python (no Temporal workflow code)."""
