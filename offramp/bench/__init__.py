"""`offramp bench` (`make bench`): throughput and fault figures for the local stack.

A tool, not the engine: it starts its own Temporal dev server, anvil, Kado simulator and worker
processes on free 127.0.0.1 ports under a temporary directory, runs the scenarios, prints figures
(never asserts timings) and stops everything it started. See `offramp.bench.runner`.
"""
