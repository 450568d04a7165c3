"""SELL orders: what a wallet backend asks for, what the engine checks, what it reports."""
