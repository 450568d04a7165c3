"""Chain activities: preflight, fee quote, sign-and-broadcast, confirmation.

Every side effect of a payment lives here. The signer stays inside the worker: inputs and outputs
carry transaction fields and hashes, never a key.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from temporalio import activity
from temporalio.exceptions import ApplicationError
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from activities.hot_wallet import previous_attempts
from offramp.chain import fees
from offramp.chain.addresses import InvalidAddress, checksum, validate_recipient
from offramp.chain.amounts import exact_base_units
from offramp.chain.broadcast_errors import classify_broadcast_error
from offramp.chain.models import (
    AwaitInput,
    AwaitKind,
    AwaitResult,
    BroadcastInput,
    BroadcastKind,
    BroadcastResult,
    FeeQuote,
    PaymentRequest,
    PreflightAccepted,
    PreflightResult,
    RejectionCode,
    SendTuning,
    TransferExpectation,
    TxAttempt,
    TxTemplate,
    WalletNonces,
    hot_wallet_workflow_id,
)
from offramp.chain.rpc import (
    TRANSFER_TOPIC,
    ChainClient,
    ChainRuntime,
    ChainUnavailable,
    encode_balance_of,
    encode_transfer,
)
from offramp.config import AssetConfig, ChainConfig

log = logging.getLogger("offramp.activities.chain")

NATIVE_TRANSFER_GAS = 21_000
_UNKNOWN_POLLS_FOR_DROP = 3


def _rpc_message(exc: Web3RPCError) -> str:
    response: Any = exc.rpc_response
    if isinstance(response, dict):
        error = response.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc.message) if exc.message else str(exc)


def _reject(code: RejectionCode, reason: str) -> PreflightResult:
    return PreflightResult(rejection_code=code, reason=reason)


def tuning_of(config: ChainConfig) -> SendTuning:
    return SendTuning(
        confirmations=config.confirmations,
        max_fee_per_gas_cap_wei=config.max_fee_per_gas_cap_wei,
        bump_after_seconds=config.bump_after_seconds,
        poll_interval_seconds=config.poll_interval_seconds,
        rpc_timeout_seconds=config.rpc_timeout_seconds,
        in_flight_limit=config.in_flight_limit,
        reservation_timeout_seconds=config.reservation_timeout_seconds,
    )


def to_base_units(amount: Decimal, decimals: int) -> int | str:
    """Exact whole units -> base units, or the reason it cannot be done."""
    try:
        if not amount.is_finite():
            return "the amount is not a finite number"
        if amount <= 0:
            return f"the amount {amount} is not positive"
        base = exact_base_units(amount, decimals)
        if base is None:
            return f"the amount {amount} has more than {decimals} fractional digits"
        return base
    except InvalidOperation:
        return "the amount is not a valid decimal"


def _find_asset(config: ChainConfig, symbol: str) -> AssetConfig | None:
    asset = config.assets.get(symbol)
    if asset is None:
        matches = [a for key, a in config.assets.items() if key.lower() == symbol.lower()]
        asset = matches[0] if len(matches) == 1 else None
    return asset


class ChainActivities:
    def __init__(self, runtime: ChainRuntime) -> None:
        self.runtime = runtime

    async def _client(self, chain: str) -> ChainClient:
        try:
            served = await self.runtime.served(chain)
        except ChainUnavailable as exc:
            raise ApplicationError(str(exc), type="ChainUnavailable") from None
        if isinstance(served, str):
            # Retryable on purpose: once a nonce is held the payment must not fail; it waits for
            # the worker's configuration to be fixed (operators see the failing attempts).
            raise ApplicationError(served, type="ChainNotServed")
        return served

    def all_hot_wallets(self) -> set[str]:
        return {c.hot_wallet for c in self.runtime.settings.chains.values()}

    async def _quote(self, client: ChainClient) -> tuple[int, fees.Fees]:
        block = await client.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        tip = int(await client.w3.eth.max_priority_fee)
        return base_fee, fees.quote(base_fee, tip, client.config.max_fee_per_gas_cap_wei)

    @activity.defn(name="payment_preflight")
    async def payment_preflight(self, request: PaymentRequest) -> PreflightResult:
        """Every check that can refuse a payment, before any nonce is taken."""
        config = self.runtime.settings.chain(request.chain)
        if config is None:
            return _reject(
                RejectionCode.CHAIN_NOT_CONFIGURED, f"chain {request.chain!r} is not configured"
            )
        # Earlier runs of this payment (a retried child) may have signed: then no refusal may
        # end it, since a transaction may exist. A refusal becomes a retryable error instead.
        previous = await previous_attempts(
            activity.client(),
            hot_wallet_workflow_id(config.chain_id, config.hot_wallet, config.wallet_entity_suffix),
            request.payment_id,
        )

        def refuse(code: RejectionCode, reason: str) -> PreflightResult:
            if previous:
                raise ApplicationError(
                    f"{reason}; earlier attempts of this payment exist, so it is not refused",
                    type="RefusedAfterAttempts",
                )
            return _reject(code, reason)

        try:
            served = await self.runtime.served(request.chain)
        except ChainUnavailable as exc:
            raise ApplicationError(str(exc), type="ChainUnavailable") from None
        if isinstance(served, str):
            return refuse(RejectionCode.CHAIN_NOT_SERVED, served)
        client = served
        asset = _find_asset(config, request.asset)
        if asset is None:
            return refuse(
                RejectionCode.ASSET_NOT_ALLOWED,
                f"asset {request.asset!r} is not allow-listed on chain {request.chain!r}",
            )
        if request.expected_token_address is not None:
            try:
                expected = checksum(request.expected_token_address)
            except InvalidAddress as exc:
                return refuse(RejectionCode.TOKEN_MISMATCH, f"token address: {exc}")
            if asset.address is None or expected != asset.address:
                return refuse(
                    RejectionCode.TOKEN_MISMATCH,
                    f"token address {expected} is not the configured {asset.symbol} contract "
                    f"{asset.address or '(native coin)'}",
                )
        base = to_base_units(request.amount, asset.decimals)
        if isinstance(base, str):
            return refuse(RejectionCode.INVALID_AMOUNT, base)
        if request.amount > asset.per_order_cap:
            return refuse(
                RejectionCode.AMOUNT_OVER_CAP,
                f"{request.amount} {asset.symbol} exceeds the per-order cap {asset.per_order_cap}",
            )
        try:
            recipient = validate_recipient(
                request.recipient, self.all_hot_wallets(), request.forbidden_recipients
            )
        except InvalidAddress as exc:
            return refuse(RejectionCode.INVALID_RECIPIENT, f"recipient: {exc}")

        w3 = client.w3
        hot = config.hot_wallet
        if asset.address is None:
            to, value, data = recipient, base, "0x"
        else:
            to, value, data = asset.address, 0, encode_transfer(recipient, base)
        if previous:
            # A previous run of this payment (a retried child) signed these; it may have paid
            # already, so the balances prove nothing now: follow its transactions instead.
            last = previous[-1].fields
            if (last.to.lower(), last.value, last.data.lower()) != (to.lower(), value, data):
                raise ApplicationError(
                    f"payment id {request.payment_id!r} was already used for another transfer",
                    type="PaymentIdReused",
                    non_retryable=True,
                )
            template = TxTemplate(to=last.to, value=last.value, data=last.data, gas=last.gas)
            return PreflightResult(
                accepted=self._accepted(config, asset, recipient, base, template, previous)
            )
        base_fee, quote = await self._quote(client)
        if base_fee > config.max_fee_per_gas_cap_wei:
            return _reject(
                RejectionCode.FEE_ABOVE_CAP,
                f"the base fee {base_fee} wei exceeds the fee cap "
                f"{config.max_fee_per_gas_cap_wei} wei",
            )
        native_balance = int(await w3.eth.get_balance(to_checksum_address(hot)))
        if asset.address is None:
            if native_balance < value:
                return _reject(
                    RejectionCode.INSUFFICIENT_BALANCE,
                    f"insufficient balance: the hot wallet holds {native_balance} wei, "
                    f"the payment needs {value} wei plus gas",
                )
        else:
            assert asset.address is not None
            raw = await w3.eth.call(
                {"to": to_checksum_address(asset.address), "data": HexStr(encode_balance_of(hot))}
            )
            token_balance = int.from_bytes(bytes(raw), "big") if raw else 0
            if token_balance < base:
                return _reject(
                    RejectionCode.INSUFFICIENT_BALANCE,
                    f"insufficient balance: the hot wallet holds {token_balance} base units of "
                    f"{asset.symbol}, the payment needs {base}",
                )
        try:
            estimate = int(
                await w3.eth.estimate_gas(
                    {
                        "from": to_checksum_address(hot),
                        "to": to_checksum_address(to),
                        "value": value,  # type: ignore[typeddict-item]
                        "data": HexStr(data),
                    }
                )
            )
        except ContractLogicError as exc:
            return _reject(
                RejectionCode.WOULD_REVERT,
                f"the transfer would revert: {exc.message or 'execution reverted'}",
            )
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            if "insufficient funds" in message.lower():
                return _reject(
                    RejectionCode.INSUFFICIENT_BALANCE, f"insufficient balance: {message}"
                )
            if "revert" in message.lower():
                return _reject(RejectionCode.WOULD_REVERT, f"the transfer would revert: {message}")
            raise
        gas = estimate if estimate == NATIVE_TRANSFER_GAS else -(-estimate * 125 // 100)
        if native_balance < value + gas * quote.max_fee_per_gas:
            return _reject(
                RejectionCode.INSUFFICIENT_BALANCE,
                f"insufficient balance: the hot wallet holds {native_balance} wei, the payment "
                f"needs {value + gas * quote.max_fee_per_gas} wei including gas",
            )
        template = TxTemplate(to=to, value=value, data=data, gas=gas)
        return PreflightResult(accepted=self._accepted(config, asset, recipient, base, template))

    @staticmethod
    def _accepted(
        config: ChainConfig,
        asset: AssetConfig,
        recipient: str,
        base: int,
        template: TxTemplate,
        resume: list[TxAttempt] | None = None,
    ) -> PreflightAccepted:
        daily_cap = to_base_units(asset.daily_cap, asset.decimals)
        return PreflightAccepted(
            chain_id=config.chain_id,
            hot_wallet=config.hot_wallet,
            hot_wallet_workflow_id=hot_wallet_workflow_id(
                config.chain_id, config.hot_wallet, config.wallet_entity_suffix
            ),
            recipient=recipient,
            asset=asset.symbol,
            token_address=asset.address,
            decimals=asset.decimals,
            amount_base_units=base,
            daily_cap_base_units=daily_cap if isinstance(daily_cap, int) else 0,
            template=template,
            tuning=tuning_of(config),
            resume_attempts=resume or [],
        )

    @activity.defn(name="quote_fees")
    async def quote_fees(self, chain: str) -> FeeQuote:
        client = await self._client(chain)
        base_fee, quote = await self._quote(client)
        return FeeQuote(
            base_fee_per_gas=base_fee,
            max_fee_per_gas=quote.max_fee_per_gas,
            max_priority_fee_per_gas=quote.max_priority_fee_per_gas,
        )

    @activity.defn(name="read_wallet_nonces")
    async def read_wallet_nonces(self, chain: str) -> WalletNonces:
        client = await self._client(chain)
        address = to_checksum_address(client.config.hot_wallet)
        latest = await client.w3.eth.get_transaction_count(address, "latest")
        pending = await client.w3.eth.get_transaction_count(address, "pending")
        return WalletNonces(latest=int(latest), pending=int(pending))

    @activity.defn(name="sign_and_broadcast")
    async def sign_and_broadcast(self, inp: BroadcastInput) -> BroadcastResult:
        """Sign the fixed fields (same bytes and hash on every retry) and send them."""
        client = await self._client(inp.chain)
        signer = self.runtime.signer
        if signer is None or signer.address.lower() != client.config.hot_wallet.lower():
            raise ApplicationError("this worker has no signer for the hot wallet", type="NoSigner")
        if inp.fields.chain_id != client.config.chain_id:
            raise ApplicationError(
                f"tx chain id {inp.fields.chain_id} is not chain {inp.chain!r}", type="WrongChain"
            )
        signed = signer.sign(inp.fields)
        try:
            await client.w3.eth.send_raw_transaction(signed.raw_transaction)
        except Web3RPCError as exc:
            message = _rpc_message(exc)
            kind = classify_broadcast_error(message)
            if kind is None:
                # Unknown refusal or outcome: retry the same bytes later.
                raise ApplicationError(
                    f"the node refused the transaction: {message}", type="BroadcastRefused"
                ) from None
            log.info("broadcast %s nonce %s: %s", signed.tx_hash, inp.fields.nonce, kind.value)
            return BroadcastResult(tx_hash=signed.tx_hash, kind=kind, message=message)
        log.info("broadcast %s nonce %s", signed.tx_hash, inp.fields.nonce)
        return BroadcastResult(tx_hash=signed.tx_hash, kind=BroadcastKind.SENT)

    async def _receipt(self, client: ChainClient, tx_hash: str) -> Any | None:
        try:
            return await client.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return None

    async def _find_receipt(self, client: ChainClient, hashes: list[str]) -> Any | None:
        for tx_hash in hashes:
            receipt = await self._receipt(client, tx_hash)
            if receipt is not None:
                return receipt
        return None

    async def _known_to_node(self, client: ChainClient, hashes: list[str]) -> bool:
        for tx_hash in hashes:
            try:
                await client.w3.eth.get_transaction(HexBytes(tx_hash))
                return True
            except TransactionNotFound:
                continue
        return False

    @staticmethod
    def _transfer_matches(receipt: Any, expectation: TransferExpectation) -> str | None:
        """None if the receipt holds exactly the expected Transfer log, else what is wrong."""
        if expectation.token_address is None:
            return None
        token = expectation.token_address.lower()
        matches = 0
        for entry in receipt["logs"]:
            topics = [HexBytes(t).to_0x_hex() for t in entry["topics"]]
            if entry["address"].lower() != token or not topics or topics[0] != TRANSFER_TOPIC:
                continue
            if len(topics) != 3:
                continue
            sender = "0x" + topics[1][-40:]
            recipient = "0x" + topics[2][-40:]
            value = int.from_bytes(bytes(HexBytes(entry["data"])), "big")
            if (
                sender == expectation.sender.lower()
                and recipient == expectation.recipient.lower()
                and value == expectation.amount_base_units
            ):
                matches += 1
        if matches == 1:
            return None
        return (
            f"expected exactly one Transfer of {expectation.amount_base_units} from "
            f"{expectation.sender} to {expectation.recipient} by {expectation.token_address}, "
            f"found {matches}"
        )

    @activity.defn(name="await_transaction")
    async def await_transaction(self, inp: AwaitInput) -> AwaitResult:
        """Wait (heartbeating) until one of our hashes for the nonce has the confirmations on the
        canonical chain, or something needs the workflow: stuck, dropped, reorged, conflict."""
        client = await self._client(inp.chain)
        w3 = client.w3
        sender = to_checksum_address(inp.sender)
        stuck_since = time.monotonic()
        seen_receipt = False
        unknown_polls = 0  # a load-balanced RPC may briefly not know a tx: require a streak
        while True:
            activity.heartbeat()
            receipt = await self._find_receipt(client, inp.tx_hashes)
            if receipt is not None:
                seen_receipt = True
                number = int(receipt["blockNumber"])
                head = int(await w3.eth.block_number)
                if head - number + 1 >= inp.confirmations:
                    block = await w3.eth.get_block(number)
                    if HexBytes(block["hash"]) == HexBytes(receipt["blockHash"]):
                        result = AwaitResult(
                            kind=AwaitKind.CONFIRMED,
                            tx_hash=HexBytes(receipt["transactionHash"]).to_0x_hex(),
                            block_number=number,
                            block_hash=HexBytes(receipt["blockHash"]).to_0x_hex(),
                            gas_used=int(receipt["gasUsed"]),
                            effective_gas_price=int(receipt.get("effectiveGasPrice", 0) or 0),
                        )
                        if int(receipt["status"]) != 1:
                            return result.model_copy(update={"kind": AwaitKind.REVERTED})
                        if inp.expectation is not None:
                            problem = self._transfer_matches(receipt, inp.expectation)
                            if problem:
                                return result.model_copy(
                                    update={"kind": AwaitKind.TRANSFER_MISMATCH, "detail": problem}
                                )
                        return result
            elif seen_receipt:
                return AwaitResult(kind=AwaitKind.REORGED, detail="the mined tx left the chain")
            elif not await self._known_to_node(client, inp.tx_hashes):
                unknown_polls += 1
                if unknown_polls < _UNKNOWN_POLLS_FOR_DROP:
                    await asyncio.sleep(inp.poll_interval_seconds)
                    continue
                latest = int(await w3.eth.get_transaction_count(sender, "latest"))
                if latest > inp.nonce:
                    # Mined between our two reads? Look once more before calling it a conflict.
                    if await self._find_receipt(client, inp.tx_hashes) is not None:
                        continue
                    return AwaitResult(
                        kind=AwaitKind.NONCE_CONFLICT,
                        detail=f"nonce {inp.nonce} was used by a transaction that is not ours",
                    )
                return AwaitResult(kind=AwaitKind.DROPPED, detail="no longer known to the node")
            else:
                unknown_polls = 0
                latest = int(await w3.eth.get_transaction_count(sender, "latest"))
                if latest < inp.nonce:
                    stuck_since = time.monotonic()  # queued behind earlier nonces: not our fee
                elif (
                    inp.stuck_after_seconds is not None
                    and time.monotonic() - stuck_since >= inp.stuck_after_seconds
                ):
                    return AwaitResult(kind=AwaitKind.STUCK, detail="not mined in time")
            await asyncio.sleep(inp.poll_interval_seconds)

    def all(self) -> list[Any]:
        return [
            self.payment_preflight,
            self.quote_fees,
            self.read_wallet_nonces,
            self.sign_and_broadcast,
            self.await_transaction,
        ]
