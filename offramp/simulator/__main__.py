"""`python -m offramp.simulator --port 8787 --rpc-url http://127.0.0.1:8545 --token-address 0x..
--data-file data/simulator.json`. The webhook secret comes from OFFRAMP_SIM_WEBHOOK_SECRET or
--webhook-secret-file (never from argv, which other users can read)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from pydantic import SecretStr, ValidationError

from offramp.simulator.app import SimulatorConfig, run_simulator
from offramp.simulator.webhooks import DEFAULT_SIGNATURE_HEADER

WEBHOOK_SECRET_ENV = "OFFRAMP_SIM_WEBHOOK_SECRET"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m offramp.simulator", description="Kado order-status simulator"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument("--rpc-url", help="EVM JSON-RPC to watch for deposits")
    parser.add_argument("--chain-name", default="anvil")
    parser.add_argument("--chain-id", type=int, default=None)
    parser.add_argument("--token-address", help="the configured token's contract")
    parser.add_argument("--token-symbol", default="USDC")
    parser.add_argument("--token-decimals", type=int, default=6)
    parser.add_argument("--data-file", type=Path, help="persist orders here (survive restarts)")
    parser.add_argument("--poll-interval", type=float, default=0.2, help="chain poll, seconds")
    parser.add_argument("--settlement-delay", type=float, default=2.0, help="seconds")
    parser.add_argument("--confirmations", type=int, default=1)
    parser.add_argument("--expiry", type=float, default=1800.0, help="default order expiry, s")
    parser.add_argument("--webhook-url")
    parser.add_argument("--webhook-secret-file", type=Path)
    parser.add_argument("--webhook-header", default=DEFAULT_SIGNATURE_HEADER)
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    secret: SecretStr | None = None
    if args.webhook_secret_file is not None:
        secret = SecretStr(args.webhook_secret_file.read_text().strip())
    elif os.environ.get(WEBHOOK_SECRET_ENV):
        secret = SecretStr(os.environ[WEBHOOK_SECRET_ENV])
    values = {
        "host": args.host,
        "port": args.port,
        "rpc_url": args.rpc_url,
        "chain_name": args.chain_name,
        "token_symbol": args.token_symbol,
        "token_address": args.token_address,
        "token_decimals": args.token_decimals,
        "data_file": args.data_file,
        "poll_interval_seconds": args.poll_interval,
        "default_settlement_delay_seconds": args.settlement_delay,
        "default_confirmations": args.confirmations,
        "default_expiry_seconds": args.expiry,
        "webhook_url": args.webhook_url,
        "webhook_secret": secret,
        "webhook_header": args.webhook_header,
    }
    if args.chain_id is not None:
        values["chain_id"] = args.chain_id
    return SimulatorConfig.model_validate(values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
    except (ValidationError, OSError) as exc:
        print(f"offramp simulator: invalid configuration: {exc}", file=sys.stderr)
        return 2
    asyncio.run(run_simulator(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
