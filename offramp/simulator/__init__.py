"""A Kado order-status simulator whose SELL orders move because of real deposits on a local EVM
chain. Run it with `python -m offramp.simulator`; embed it with `app.build_app` /
`app.run_simulator`; drive it from tests with `admin.SimulatorAdmin`."""
