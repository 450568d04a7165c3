"""Custom search attributes operators filter on in the Web UI.

One list, used by the worker, the local stack (registered at dev-server start) and the test
fixtures, and checked against docker-compose.yml by a test, so they can never disagree.
"""

from __future__ import annotations

from typing import Any

from temporalio.common import SearchAttributeKey

ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
# Whose order it is (`kado`, ...): set when the order is started, never upserted.
PROVIDER = SearchAttributeKey.for_keyword("Provider")
STAGE = SearchAttributeKey.for_keyword("Stage")
TRANSFER_STATUS = SearchAttributeKey.for_keyword("TransferStatus")
CHAIN = SearchAttributeKey.for_keyword("Chain")
ASSET = SearchAttributeKey.for_keyword("Asset")
# Keyword, not Double: the amount is shown and matched exactly as the provider's decimal text.
AMOUNT = SearchAttributeKey.for_keyword("Amount")
TX_HASH = SearchAttributeKey.for_keyword("TxHash")
HOT_WALLET = SearchAttributeKey.for_keyword("HotWallet")
NEEDS_ATTENTION = SearchAttributeKey.for_bool("NeedsAttention")

ALL: tuple[SearchAttributeKey[Any], ...] = (
    ORDER_ID,
    PROVIDER,
    STAGE,
    TRANSFER_STATUS,
    CHAIN,
    ASSET,
    AMOUNT,
    TX_HASH,
    HOT_WALLET,
    NEEDS_ATTENTION,
)

# Names of the indexed value types as the `temporal` CLI and admin tools spell them.
_CLI_TYPE_NAMES = {"KEYWORD": "Keyword", "BOOL": "Bool", "DOUBLE": "Double", "INT": "Int"}


def cli_definitions() -> list[str]:
    """`Name=Type` pairs for `temporal server start-dev --search-attribute` and admin tools."""
    return [f"{key.name}={_CLI_TYPE_NAMES[key.indexed_value_type.name]}" for key in ALL]
