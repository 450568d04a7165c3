"""Every side effect of the engine: provider HTTP, chain RPC, signing."""
