"""Sell-order activities: the pre-send checks that need the worker's configuration."""

from __future__ import annotations

from collections.abc import Mapping

from temporalio import activity

from offramp.config import ChainConfig
from offramp.orders.checks import check_order
from offramp.orders.models import CHECK_SELL_ORDER_ACTIVITY, CheckResult, CheckSellOrderInput


class OrderActivities:
    """Bound to the chains this worker serves (each one's eth_chainId verified at start)."""

    def __init__(self, chains: Mapping[str, ChainConfig]) -> None:
        self._chains = dict(chains)
        # Every hot wallet we control, on any chain: never a deposit address.
        self._own_wallets = frozenset(c.hot_wallet.lower() for c in self._chains.values())

    @activity.defn(name=CHECK_SELL_ORDER_ACTIVITY)
    async def check_sell_order(self, input: CheckSellOrderInput) -> CheckResult:
        result = check_order(input.order, input.request, self._chains, self._own_wallets)
        if result.rejection is not None:
            activity.logger.info("order %s rejected: %s", input.order.id, result.rejection)
        return result
