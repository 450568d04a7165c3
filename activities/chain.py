"""Chain activities: preflight, fee quote, sign-and-broadcast, confirmation.

Every side effect of a payment lives here. The signer stays inside the worker: inputs and outputs
carry transaction fields and hashes, never a key.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from decimal import Decimal, InvalidOperation
from typing import Any, ParamSpec, TypeVar

from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from temporalio import activity
from temporalio.exceptions import ApplicationError
from web3.exceptions import ContractLogicError, TransactionNotFound, Web3RPCError

from activities.hot_wallet import previous_hold
from activities.redaction import redacted
from offramp.chain import fees, names
from offramp.chain.addresses import InvalidAddress, checksum, validate_recipient
from offramp.chain.amounts import exact_base_units
from offramp.chain.broadcast_errors import classify_broadcast_error
from offramp.chain.failover import NodeAnswer, rpc_error_message, rpc_result
from offramp.chain.models import (
    AwaitInput,
    AwaitKind,
    AwaitResult,
    BroadcastInput,
    BroadcastKind,
    BroadcastResult,
    FeeQuote,
    PaymentRequest,
    PaymentState,
    PreflightAccepted,
    PreflightResult,
    SendTuning,
    TransferExpectation,
    TxAttempt,
    TxFields,
    TxTemplate,
    WalletNonces,
    WalletNoncesInput,
    hot_wallet_workflow_id,
)
from offramp.chain.pool import WalletFunds, best_funded, choose_wallet, headroom
from offramp.chain.rpc import (
    TRANSFER_TOPIC,
    ChainClient,
    ChainRuntime,
    ChainUnavailable,
    encode_balance_of,
    encode_transfer,
)
from offramp.chain.signer import SignedTx
from offramp.config import AssetConfig, ChainConfig, find_asset
from offramp.observability import order_metrics
from offramp.rejections import RejectReason

log = logging.getLogger("offramp.activities.chain")

P = ParamSpec("P")
R = TypeVar("R")

# What a broadcast means when nodes disagree: one that took it wins; then the refusal that says
# most about the nonce ("nonce too low": used, by us or another; never a reason to fail over).
_BROADCAST_PRECEDENCE = (
    BroadcastKind.SENT,
    BroadcastKind.ALREADY_KNOWN,
    BroadcastKind.NONCE_TOO_LOW,
    BroadcastKind.UNDERPRICED,
    BroadcastKind.INSUFFICIENT_FUNDS,
    BroadcastKind.FEE_BELOW_BASE,
)


def _answer_summary(answer: NodeAnswer) -> str:
    if answer.failure is not None:
        return answer.failure
    return "accepted" if isinstance(rpc_result(answer), str) else "refused"


NATIVE_TRANSFER_GAS = 21_000
_UNKNOWN_POLLS_FOR_DROP = 3


def _rpc_message(exc: Web3RPCError) -> str:
    response: Any = exc.rpc_response
    if isinstance(response, dict):
        error = response.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc.message) if exc.message else str(exc)


def _reject(code: RejectReason, reason: str) -> PreflightResult:
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
        """Every pool wallet of every chain: never a recipient."""
        return {w for c in self.runtime.settings.chains.values() for w in c.hot_wallets}

    async def _quote(self, client: ChainClient) -> tuple[int, fees.Fees]:
        block = await client.w3.eth.get_block("latest")
        base_fee = int(block.get("baseFeePerGas", 0) or 0)
        tip = int(await client.w3.eth.max_priority_fee)
        return base_fee, fees.quote(base_fee, tip, client.config.max_fee_per_gas_cap_wei)

    @activity.defn(name=names.PAYMENT_PREFLIGHT_ACTIVITY)
    @redacted
    async def payment_preflight(self, request: PaymentRequest) -> PreflightResult:
        """Every check that can refuse a payment, before any nonce is taken."""
        config = self.runtime.settings.chain(request.chain)
        if config is None:
            return _reject(
                RejectReason.UNSUPPORTED_CHAIN, f"chain {request.chain!r} is not configured"
            )
        # Earlier runs of this payment (a retried child) may have signed: then no refusal may
        # end it, since a transaction may exist. A refusal becomes a retryable error instead.
        previous_wallet, previous = await self._previous_in_pool(config, request.payment_id)

        def refuse(code: RejectReason, reason: str) -> PreflightResult:
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
            return refuse(RejectReason.CHAIN_ID_MISMATCH, served)
        client = served
        asset = find_asset(config.assets, request.asset)
        if asset is None:
            return refuse(
                RejectReason.ASSET_NOT_ALLOWED,
                f"asset {request.asset!r} is not allow-listed on chain {request.chain!r}",
            )
        if request.expected_token_address is not None:
            try:
                expected = checksum(request.expected_token_address)
            except InvalidAddress as exc:
                return refuse(RejectReason.TOKEN_ADDRESS_MISMATCH, f"token address: {exc}")
            if asset.address is None or expected != asset.address:
                return refuse(
                    RejectReason.TOKEN_ADDRESS_MISMATCH,
                    f"token address {expected} is not the configured {asset.symbol} contract "
                    f"{asset.address or '(native coin)'}",
                )
        base = to_base_units(request.amount, asset.decimals)
        if isinstance(base, str):
            return refuse(RejectReason.AMOUNT_INVALID, base)
        if asset.over_order_cap(request.amount):
            return refuse(
                RejectReason.OVER_ORDER_CAP,
                f"{request.amount} {asset.symbol} exceeds the per-order cap {asset.per_order_cap}",
            )
        try:
            recipient = validate_recipient(
                request.recipient, self.all_hot_wallets(), request.forbidden_recipients
            )
        except InvalidAddress as exc:
            return refuse(RejectReason.DEPOSIT_ADDRESS_INVALID, f"recipient: {exc}")

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
            assert previous_wallet is not None  # attempts come from the wallet that holds them
            return PreflightResult(
                accepted=self._accepted(
                    config, previous_wallet, asset, recipient, base, template, previous
                )
            )
        base_fee, quote = await self._quote(client)
        if base_fee > config.max_fee_per_gas_cap_wei:
            return _reject(
                RejectReason.FEE_ABOVE_CAP,
                f"the base fee {base_fee} wei exceeds the fee cap "
                f"{config.max_fee_per_gas_cap_wei} wei",
            )
        template = TxTemplate(to=to, value=value, data=data, gas=NATIVE_TRANSFER_GAS)
        return await self._admit(
            request, client, asset, recipient, base, template, quote, pinned=previous_wallet
        )

    async def _pool_funds(self, client: ChainClient, asset: AssetConfig) -> list[WalletFunds]:
        """Native and asset balance of every pool wallet (read concurrently)."""

        async def funds(wallet: str) -> WalletFunds:
            native = int(await client.w3.eth.get_balance(to_checksum_address(wallet)))
            if asset.address is None:
                return WalletFunds(wallet, native, native)
            raw = await client.w3.eth.call(
                {
                    "to": to_checksum_address(asset.address),
                    "data": HexStr(encode_balance_of(wallet)),
                }
            )
            return WalletFunds(wallet, native, int.from_bytes(bytes(raw), "big") if raw else 0)

        return list(await asyncio.gather(*(funds(w) for w in client.config.hot_wallets)))

    async def _estimate_gas(
        self, client: ChainClient, sender: str, template: TxTemplate
    ) -> int | PreflightResult:
        """Gas for the transfer from `sender` (native sends too: a deposit address may be a
        contract), with a 25% margin unless it is a plain 21,000 transfer; or the rejection."""
        try:
            estimate = int(
                await client.w3.eth.estimate_gas(
                    {
                        "from": to_checksum_address(sender),
                        "to": to_checksum_address(template.to),
                        "value": template.value,  # type: ignore[typeddict-item]
                        "data": HexStr(template.data),
                    }
                )
            )
        except ContractLogicError as exc:
            return _reject(
                RejectReason.TRANSFER_WOULD_FAIL,
                f"the transfer would revert: {exc.message or 'execution reverted'}",
            )
        except Web3RPCError as exc:
            message = client.provider.redact(_rpc_message(exc))
            if "insufficient funds" in message.lower():
                return _reject(
                    RejectReason.INSUFFICIENT_BALANCE, f"insufficient balance: {message}"
                )
            if "revert" in message.lower():
                return _reject(
                    RejectReason.TRANSFER_WOULD_FAIL, f"the transfer would revert: {message}"
                )
            raise
        return estimate if estimate == NATIVE_TRANSFER_GAS else -(-estimate * 125 // 100)

    async def _admit(
        self,
        request: PaymentRequest,
        client: ChainClient,
        asset: AssetConfig,
        recipient: str,
        base: int,
        template: TxTemplate,
        quote: fees.Fees,
        pinned: str | None = None,
    ) -> PreflightResult:
        """Pick the pool wallet that pays (see offramp.chain.pool; only `pinned` when an earlier
        run of the payment is held there), or refuse for funds. In
        `wait` mode (on_insufficient_funds) a shortfall is not a refusal: the best-funded wallet
        is chosen and its entity holds the payment without a nonce until a top-up."""
        native = asset.address is None
        waits = client.config.on_insufficient_funds == "wait"
        pool = await self._pool_funds(client, asset)
        if pinned is not None:
            pool = [f for f in pool if f.address.lower() == pinned.lower()]
        unit = "wei" if native else f"base units of {asset.symbol}"
        covering = [
            f for f in pool if headroom(f, amount=base, native=native, gas_cost_wei=0) is not None
        ]
        if not covering and not waits:
            richest = max(f.asset_base_units for f in pool)
            return _reject(
                RejectReason.INSUFFICIENT_BALANCE,
                f"insufficient balance: the best-funded hot wallet holds {richest} {unit}, "
                f"the payment needs {base}" + (" plus gas" if native else ""),
            )
        if covering:
            probe = max(covering, key=lambda f: f.asset_base_units)
            gas = await self._estimate_gas(client, probe.address, template)
        else:
            probe = best_funded(pool)
            gas = await self._unfunded_gas(client, probe, asset, recipient, template)
        if isinstance(gas, PreflightResult):
            if not (waits and gas.rejection_code is RejectReason.INSUFFICIENT_BALANCE):
                return gas
            gas = asset.unfunded_gas_limit  # short of native coin only: the entity waits
        gas_cost = gas * quote.max_fee_per_gas
        chosen = choose_wallet(
            request.payment_id, pool, amount=base, native=native, gas_cost_wei=gas_cost
        )
        if chosen is None and waits:
            chosen = probe
        if chosen is None:
            richest_native = max(f.native_wei for f in pool)
            return _reject(
                RejectReason.INSUFFICIENT_BALANCE,
                f"insufficient balance: the best-funded hot wallet holds {richest_native} wei, "
                f"the payment needs {(base if native else 0) + gas_cost} wei including gas",
            )
        template = template.model_copy(update={"gas": gas})
        return PreflightResult(
            accepted=self._accepted(client.config, chosen.address, asset, recipient, base, template)
        )

    async def _unfunded_gas(
        self,
        client: ChainClient,
        wallet: WalletFunds,
        asset: AssetConfig,
        recipient: str,
        template: TxTemplate,
    ) -> int | PreflightResult:
        """Gas limit of a payment no wallet holds the amount for (wait mode). Its estimate would
        fail for the balance alone (a token transfer reverts, a native one is "insufficient
        funds"), so the limit is the asset's fixed, generous `unfunded_gas_limit` (unused gas is
        not paid). A token wallet holding some of it first probes a transfer of what it holds to
        the recipient: a revert for another reason (a blocked recipient) is still refused now."""
        if asset.address is None or wallet.asset_base_units == 0:
            return asset.unfunded_gas_limit
        held = wallet.asset_base_units  # less than the amount: no wallet covers it
        probe = template.model_copy(update={"data": encode_transfer(recipient, held)})
        estimate = await self._estimate_gas(client, wallet.address, probe)
        if isinstance(estimate, PreflightResult):
            if estimate.rejection_code is RejectReason.INSUFFICIENT_BALANCE:
                return asset.unfunded_gas_limit
            return estimate
        return max(estimate, asset.unfunded_gas_limit)

    @staticmethod
    def _accepted(
        config: ChainConfig,
        wallet: str,
        asset: AssetConfig,
        recipient: str,
        base: int,
        template: TxTemplate,
        resume: list[TxAttempt] | None = None,
    ) -> PreflightAccepted:
        daily_cap = to_base_units(asset.daily_cap, asset.decimals)
        return PreflightAccepted(
            chain_id=config.chain_id,
            hot_wallet=wallet,
            hot_wallet_workflow_id=hot_wallet_workflow_id(
                config.chain_id, wallet, config.wallet_entity_suffix
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

    async def _previous_in_pool(
        self, config: ChainConfig, payment_id: str
    ) -> tuple[str | None, list[TxAttempt]]:
        """The pool wallet that holds this payment from an earlier run (a reservation, with or
        without signed attempts, or a queued request) and what it signed; (None, []) on a first
        run or when no wallet knows it. A held payment stays on its wallet: moving it to another
        could pay twice while a tx of the first can still be mined."""
        wallets = config.hot_wallets
        index, attempts = await previous_hold(
            activity.client(),
            [
                hot_wallet_workflow_id(config.chain_id, w, config.wallet_entity_suffix)
                for w in wallets
            ],
            payment_id,
        )
        return (wallets[index] if index is not None else None), attempts

    @activity.defn(name=names.QUOTE_FEES_ACTIVITY)
    @redacted
    async def quote_fees(self, chain: str) -> FeeQuote:
        client = await self._client(chain)
        base_fee, quote = await self._quote(client)
        return FeeQuote(
            base_fee_per_gas=base_fee,
            max_fee_per_gas=quote.max_fee_per_gas,
            max_priority_fee_per_gas=quote.max_priority_fee_per_gas,
        )

    @activity.defn(name=names.READ_WALLET_NONCES_ACTIVITY)
    @redacted
    async def read_wallet_nonces(self, inp: str | WalletNoncesInput) -> WalletNonces:
        """The wallet's latest and pending nonce: the highest answer of the healthy nodes (a
        lagging node must never lower what the hot wallet hands out). A bare chain name (older
        callers) reads the wallet of the entity that is asking."""
        if isinstance(inp, str):
            chain, wallet = inp, self._calling_wallet(inp)
        else:
            chain, wallet = inp.chain, inp.address
        client = await self._client(chain)
        if not client.config.owns(wallet):
            raise ApplicationError(
                f"{wallet} is not a hot wallet of chain {chain!r}",
                type="NotOurWallet",
                non_retryable=True,
            )
        latest, pending = await asyncio.gather(
            self._highest_nonce(client, wallet, "latest"),
            self._highest_nonce(client, wallet, "pending"),
        )
        return WalletNonces(latest=latest, pending=max(pending, latest))

    def _calling_wallet(self, chain: str) -> str:
        """For a bare chain name: the pool wallet whose hot-wallet entity is asking (entities
        started before `WalletNoncesInput` existed pass only the chain). Never a guess: another
        wallet's nonces would move this entity's next_nonce. An entity whose wallet left the pool
        gets a retryable error naming the entity (a person puts the wallet back or closes it)."""
        config = self.runtime.settings.chain(chain)
        caller = activity.info().workflow_id
        if config is not None:
            for wallet in config.hot_wallets:
                if caller == hot_wallet_workflow_id(
                    config.chain_id, wallet, config.wallet_entity_suffix
                ):
                    return wallet
        raise ApplicationError(
            f"nonce read for chain {chain!r} from {caller!r}: its wallet is not in this chain's "
            "configured pool; not reading another wallet's nonces (put the wallet back in "
            "hot_wallets, or a person closes the entity)",
            type="WalletNotInPool",
        )

    @staticmethod
    async def _highest_nonce(client: ChainClient, wallet: str, block: str) -> int:
        answers = await client.provider.fan_out(
            "eth_getTransactionCount", [to_checksum_address(wallet), block]
        )
        counts = []
        for answer in answers:
            result = rpc_result(answer)
            if isinstance(result, str):
                with contextlib.suppress(ValueError):
                    counts.append(int(result, 16))
        if not counts:
            raise ApplicationError(
                f"no RPC node of chain {client.name!r} answered eth_getTransactionCount: "
                + "; ".join(f"{a.label}: {a.failure or rpc_error_message(a)}" for a in answers),
                type="ChainUnavailable",
            )
        return max(counts)

    def _sign(self, client: ChainClient, chain: str, fields: TxFields, sender: str) -> SignedTx:
        """Sign with the key of the tx's sender (a pool wallet)."""
        signer = self.runtime.signer
        wallet = sender
        if not client.config.owns(wallet):
            raise ApplicationError(
                f"{wallet} is not a hot wallet of chain {chain!r}", type="NotOurWallet"
            )
        if signer is None or not signer.holds(wallet):
            raise ApplicationError(
                f"this worker has no signer for the hot wallet {wallet}", type="NoSigner"
            )
        if fields.chain_id != client.config.chain_id:
            raise ApplicationError(
                f"tx chain id {fields.chain_id} is not chain {chain!r}", type="WrongChain"
            )
        return signer.sign(fields, wallet)

    @activity.defn(name=names.SIGN_AND_BROADCAST_ACTIVITY)
    @redacted
    async def sign_and_broadcast(self, inp: BroadcastInput) -> BroadcastResult:
        """Sign the fixed fields with the sender's key (same bytes and hash on every retry) and
        send them to every healthy node: one accepting (or knowing) them is enough."""
        client = await self._client(inp.chain)
        sender = inp.sender or await self._sender_of_calling_payment(inp.chain)
        signed = self._sign(client, inp.chain, inp.fields, sender)
        answers = await client.provider.fan_out(
            "eth_sendRawTransaction", [HexBytes(signed.raw_transaction).to_0x_hex()]
        )
        kind, message = self._broadcast_verdict(client, answers)
        log.info(
            "broadcast %s nonce %s from %s: %s (%s)",
            signed.tx_hash,
            inp.fields.nonce,
            sender,
            kind.value,
            "; ".join(f"{a.label}: {_answer_summary(a)}" for a in answers),
        )
        return BroadcastResult(tx_hash=signed.tx_hash, kind=kind, message=message)

    @staticmethod
    async def _sender_of_calling_payment(chain: str) -> str:
        """The sender of an input without one (scheduled before pools, retried after): the hot
        wallet the calling Payment reserved its nonce with, from its own state (set from its
        recorded preflight). Never the pool's first wallet: in a reordered pool that is another
        wallet's key at this nonce. Anything else is refused (retryable) for a person."""
        info = activity.info()
        state: PaymentState | None = None
        why = "it names no hot wallet"
        if info.workflow_id is None:
            why = "no calling workflow"
        else:
            handle = activity.client().get_workflow_handle(info.workflow_id)
            try:
                state = await handle.query(names.STATE_QUERY, result_type=PaymentState)
            except Exception as exc:
                why = f"its state query failed: {type(exc).__name__}"
        if state is not None and state.hot_wallet:
            return str(state.hot_wallet)
        raise ApplicationError(
            f"sign_and_broadcast on chain {chain!r} without a sender from {info.workflow_id!r}: "
            f"cannot tell which hot wallet reserved this nonce ({why}); not signing: a person "
            "must check",
            type="SenderUnknown",
        )

    @staticmethod
    def _broadcast_verdict(
        client: ChainClient, answers: list[NodeAnswer]
    ) -> tuple[BroadcastKind, str]:
        """One verdict from every node's answer: accepted by any > known to any > the most
        telling refusal; an unknown refusal or no answer at all is retried (same bytes)."""
        kinds: dict[BroadcastKind, str] = {}
        unknown: list[str] = []
        for answer in answers:
            if isinstance(rpc_result(answer), str):
                kinds.setdefault(BroadcastKind.SENT, "")
                continue
            message = rpc_error_message(answer)
            if message is None:
                continue
            message = client.provider.redact(message)
            kind = classify_broadcast_error(message)
            if kind is None:
                unknown.append(f"{answer.label}: {message}")
            else:
                kinds.setdefault(kind, message)
        for kind in _BROADCAST_PRECEDENCE:
            if kind in kinds:
                return kind, kinds[kind]
        if unknown:
            raise ApplicationError(
                "the node refused the transaction: " + "; ".join(unknown), type="BroadcastRefused"
            )
        raise ApplicationError(
            f"no RPC node of chain {client.name!r} answered eth_sendRawTransaction: "
            + "; ".join(f"{a.label}: {a.failure}" for a in answers),
            type="ChainUnavailable",
        )

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

    @staticmethod
    async def _final(client: ChainClient, number: int) -> bool:
        """Whether block `number` is at or below the node's `safe`/`finalized` block, when the
        chain is configured to wait for that tag (read from the worker's config, so payments
        already waiting get it too); always true for `depth`."""
        tag = client.config.finality
        if tag == "depth":
            return True
        tagged = await client.w3.eth.get_block(tag)
        return int(tagged["number"]) >= number

    @activity.defn(name=names.AWAIT_TRANSACTION_ACTIVITY)
    @redacted
    async def await_transaction(self, inp: AwaitInput) -> AwaitResult:
        """Wait (heartbeating) until one of our hashes for the nonce has the confirmations on the
        canonical chain, or something needs the workflow: stuck, dropped, reorged, conflict."""
        client = await self._client(inp.chain)
        w3 = client.w3
        sender = to_checksum_address(inp.sender)
        stuck_since = time.monotonic()
        last_resend: float | None = None
        seen_receipt = False
        unknown_polls = 0  # a load-balanced RPC may briefly not know a tx: require a streak
        while True:
            activity.heartbeat()
            receipt = await self._find_receipt(client, inp.tx_hashes)
            if receipt is not None:
                seen_receipt = True
                number = int(receipt["blockNumber"])
                head = int(await w3.eth.block_number)
                if head - number + 1 >= inp.confirmations and await self._final(client, number):
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
            elif seen_receipt and inp.resend is None:
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
                if inp.resend is None:
                    return AwaitResult(kind=AwaitKind.DROPPED, detail="no longer known to the node")
                seen_receipt, unknown_polls = False, 0
                last_resend = await self._resend(client, inp, last_resend)
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

    async def _resend(
        self, client: ChainClient, inp: AwaitInput, last: float | None
    ) -> float | None:
        """Send `inp.resend` again (at most every `resend_every_seconds`); returns when it was
        last sent. Only a tx already in the payment's history is ever sent: same bytes, same
        hash. A refusal is logged and tried again at the next interval."""
        assert inp.resend is not None
        now = time.monotonic()
        if last is not None and now - last < (inp.resend_every_seconds or 0):
            return last
        signed = self._sign(client, inp.chain, inp.resend, inp.sender)
        if signed.tx_hash not in inp.tx_hashes:
            raise ApplicationError(
                f"re-send of nonce {inp.nonce}: {signed.tx_hash} is not one of the payment's "
                "transactions",
                type="ResendMismatch",
                non_retryable=True,
            )
        answers = await client.provider.fan_out(
            "eth_sendRawTransaction", [HexBytes(signed.raw_transaction).to_0x_hex()]
        )
        order_metrics.payment_rebroadcast(inp.chain)
        log.info(
            "re-sent %s nonce %s: %s",
            signed.tx_hash,
            inp.nonce,
            "; ".join(f"{a.label}: {_answer_summary(a)}" for a in answers),
        )
        return now

    def all(self) -> list[Any]:
        return [
            self.payment_preflight,
            self.quote_fees,
            self.read_wallet_nonces,
            self.sign_and_broadcast,
            self.await_transaction,
        ]
