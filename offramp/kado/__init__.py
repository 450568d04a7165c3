"""Kado provider: order models (`models`, free of I/O imports so workflows may use them), the
async HTTP client (`client`) and its typed errors (`errors`)."""
