"""Kado, the first provider adapter: order models (`models`, free of I/O imports so workflows may
use them), the async HTTP client (`client`), its typed errors (`errors`) and the adapter with the
pure mapping to the engine's snapshot (`adapter`)."""
