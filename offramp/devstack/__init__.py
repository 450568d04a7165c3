"""The local stack: Temporal dev server, anvil with the test token, simulator and worker as child
processes of one supervisor. Test fixtures reuse the same pieces."""
