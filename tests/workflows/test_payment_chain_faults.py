"""Acceptance on private anvils: a stuck transaction is fee-bumped under geth's rule (and stops at
the cap), a dropped one is re-broadcast, a reorg before the confirmations leads to re-broadcast
and re-confirmation, and an abandoned nonce is filled so later payments are not blocked."""

from __future__ import annotations

import itertools

from eth_account import Account
from hexbytes import HexBytes
from temporalio.client import Client, WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from web3.exceptions import TransactionNotFound

from activities.chain import tuning_of
from offramp.chain import fees
from offramp.chain.models import (
    HotWalletInput,
    HotWalletParams,
    HotWalletState,
    PaymentState,
    PaymentStatus,
    ReservationStatus,
    ReserveRequest,
    ReserveResult,
    nonce_fill_workflow_id,
    payment_workflow_id,
)
from offramp.devstack.chain import HOT_WALLET
from tests.chain.support import (
    CHAIN,
    PayChain,
    assert_no_key_in_histories,
    payment_request,
    payment_state,
    payment_worker,
    start_payment,
    wait_for,
    wallet_id,
)


def _mined_hashes(chain: PayChain, hashes: list[str]) -> list[str]:
    mined = []
    for tx_hash in hashes:
        try:
            chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))
            mined.append(tx_hash)
        except TransactionNotFound:
            pass
    return mined


async def test_stuck_transaction_is_bumped_by_geths_rule(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    start_nonce = chain.nonce()
    chain.set_automine(False)  # nothing is mined: the first fee is "too low" forever
    payment_id = f"stuck-{chain.chain_id}"
    async with payment_worker(
        dev_client, task_queue, {CHAIN: chain.config(bump_after_seconds=0.5)}
    ):
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, recipient, "ETH", "1.5"),
        )

        async def three_attempts() -> PaymentState | None:
            state = await payment_state(handle)
            return state if len(state.attempts) >= 3 else None

        await wait_for(three_attempts, "two fee bumps")
        chain.set_automine(True)
        chain.mine()
        outcome = await handle.result()
        state = await payment_state(handle)

    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    attempts = state.attempts
    assert len(attempts) >= 3
    assert outcome.tx_hashes == [a.tx_hash for a in attempts]
    assert len(set(outcome.tx_hashes)) == len(attempts)
    assert {a.fields.nonce for a in attempts} == {start_nonce}
    for old, new in itertools.pairwise(attempts):
        assert fees.geth_accepts_replacement(
            fees.Fees(old.fields.max_fee_per_gas, old.fields.max_priority_fee_per_gas),
            fees.Fees(new.fields.max_fee_per_gas, new.fields.max_priority_fee_per_gas),
        )
    assert _mined_hashes(chain, outcome.tx_hashes) == [outcome.tx_hash]
    assert chain.nonce() == start_nonce + 1
    assert chain.eth_balance(recipient) == 15 * 10**17
    await assert_no_key_in_histories(
        dev_client, [payment_workflow_id(payment_id), wallet_id(chain)]
    )
    print(
        "\nbumps: "
        + ", ".join(
            f"{a.tx_hash[:10]} maxFee {a.fields.max_fee_per_gas} "
            f"tip {a.fields.max_priority_fee_per_gas}"
            for a in attempts
        )
        + f"; mined {outcome.tx_hash}"
    )


async def test_bumping_stops_at_the_fee_cap_and_flags(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    chain.set_automine(False)
    base_fee = int(chain.w3.eth.get_block("latest")["baseFeePerGas"])  # fixed: no blocks mined
    tip = int(chain.w3.eth.max_priority_fee)
    first = 2 * base_fee + tip
    cap = first * 115 // 100  # room for one +10% bump, not two
    payment_id = f"cap-{chain.chain_id}"
    config = chain.config(bump_after_seconds=0.3, max_fee_per_gas_cap_wei=cap)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, Account.create().address, "ETH", "0.01"),
        )

        async def flagged() -> PaymentState | None:
            state = await payment_state(handle)
            return state if state.needs_attention else None

        state = await wait_for(flagged, "the fee cap flag")
        assert "fee cap" in (state.attention_reason or "")
        assert len(state.attempts) == 2
        assert state.attempts[-1].fields.max_fee_per_gas <= cap
        chain.set_automine(True)
        chain.mine()
        outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED
    assert len(outcome.tx_hashes) == 2


async def test_dropped_transaction_is_rebroadcast(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    chain.set_automine(False)
    payment_id = f"drop-{chain.chain_id}"
    async with payment_worker(
        dev_client, task_queue, {CHAIN: chain.config(bump_after_seconds=120)}
    ):
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, recipient, "USDC", "5"),
        )

        async def broadcast() -> PaymentState | None:
            state = await payment_state(handle)
            return state if state.attempts else None

        tx_hash = (await wait_for(broadcast, "the broadcast")).attempts[0].tx_hash
        assert chain.tx_known(tx_hash)
        chain.rpc("anvil_dropTransaction", [tx_hash])
        assert not chain.tx_known(tx_hash)

        async def rebroadcast() -> PaymentState | None:
            state = await payment_state(handle)
            return state if state.attempts[0].broadcasts >= 2 and chain.tx_known(tx_hash) else None

        state = await wait_for(rebroadcast, "the re-broadcast")
        assert any("dropped" in e for e in state.events)
        chain.set_automine(True)
        chain.mine()
        outcome = await handle.result()
    assert outcome.status is PaymentStatus.CONFIRMED
    assert outcome.tx_hash == tx_hash and outcome.tx_hashes == [tx_hash]
    assert chain.token_balance(recipient) == 5_000_000
    await assert_no_key_in_histories(dev_client, [payment_workflow_id(payment_id)])


async def test_reorg_before_confirmations_rebroadcasts_and_reconfirms(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    recipient = Account.create().address
    start_nonce = chain.nonce()
    payment_id = f"reorg-{chain.chain_id}"
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config(confirmations=3)}):
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, recipient, "USDC", "42.5"),
        )

        async def mined() -> tuple[str, str] | None:
            state = await payment_state(handle)
            if not state.attempts:
                return None
            found = _mined_hashes(chain, [state.attempts[0].tx_hash])
            if not found:
                return None
            receipt = chain.w3.eth.get_transaction_receipt(HexBytes(found[0]))
            return found[0], receipt["blockHash"].to_0x_hex()

        tx_hash, first_block = await wait_for(mined, "the first inclusion")
        assert chain.token_balance(recipient) == 42_500_000
        chain.rpc("anvil_reorg", [1, []])  # the block with our tx is replaced by an empty one
        assert chain.token_balance(recipient) == 0

        async def remined() -> str | None:
            found = _mined_hashes(chain, [tx_hash])
            if not found:
                return None
            block = chain.w3.eth.get_transaction_receipt(HexBytes(tx_hash))["blockHash"].to_0x_hex()
            return block if block != first_block else None

        await wait_for(remined, "the re-broadcast and re-inclusion")

        async def confirmed() -> bool:
            state = await payment_state(handle)
            if state.outcome is not None:
                return True
            chain.mine()
            return False

        await wait_for(confirmed, "the confirmations")
        outcome = await handle.result()
        state = await payment_state(handle)
    assert outcome.status is PaymentStatus.CONFIRMED, outcome
    assert outcome.tx_hash == tx_hash and outcome.tx_hashes == [tx_hash]
    assert outcome.block_hash != first_block
    assert any("reorged" in e or "dropped" in e for e in state.events), state.events
    assert chain.token_balance(recipient) == 42_500_000  # one transfer, not two
    assert chain.nonce() == start_nonce + 1
    await assert_no_key_in_histories(dev_client, [payment_workflow_id(payment_id)])
    print(
        f"\nreorg: {tx_hash} first in {first_block}, "
        f"confirmed in {outcome.block_hash} #{outcome.block_number}"
    )


async def test_abandoned_nonce_is_filled(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    config = chain.config(reservation_timeout_seconds=1.0)
    start_nonce = chain.nonce()
    recipient = Account.create().address
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        # An order reserves a nonce and then dies without ever sending.
        ghost: ReserveResult = await dev_client.execute_update_with_start_workflow(
            "reserve",
            ReserveRequest(
                payment_id="ghost",
                asset="USDC",
                amount_base_units=1,
                daily_cap_base_units=10**12,
                payment_workflow_id=payment_workflow_id(f"ghost-{chain.chain_id}"),  # never started
            ),
            start_workflow_operation=WithStartWorkflowOperation(
                "HotWallet",
                HotWalletInput(
                    params=HotWalletParams(
                        chain=CHAIN,
                        chain_id=chain.chain_id,
                        address=HOT_WALLET,
                        tuning=tuning_of(config),
                    )
                ),
                id=wallet_id(chain),
                task_queue=task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            ),
            result_type=ReserveResult,
        )
        assert ghost.nonce == start_nonce
        payment_id = f"after-ghost-{chain.chain_id}"
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, recipient, "ETH", "0.5"),
        )
        outcome = await handle.result()  # completes only once the gap before it is filled
        wallet = dev_client.get_workflow_handle(wallet_id(chain))

        async def filled() -> HotWalletState | None:
            state = await wallet.query("state", result_type=HotWalletState)
            ghost = state.recent.get("ghost")  # final reservations move to the bounded index
            return state if ghost and ghost.status is ReservationStatus.FILLED else None

        state = await wait_for(filled, "the fill to be recorded")
    assert outcome.status is PaymentStatus.CONFIRMED
    assert outcome.nonce == start_nonce + 1
    assert chain.nonce() == start_nonce + 2
    fill = state.recent["ghost"]
    fill_workflow_id = nonce_fill_workflow_id(wallet_id(chain), start_nonce)
    assert fill.tx_hashes
    tx = chain.w3.eth.get_transaction(HexBytes(fill.tx_hashes[-1]))
    assert tx["to"] == HOT_WALLET and tx["value"] == 0 and tx["nonce"] == start_nonce
    assert chain.eth_balance(recipient) == 5 * 10**17
    await assert_no_key_in_histories(
        dev_client, [payment_workflow_id(payment_id), wallet_id(chain), fill_workflow_id]
    )
    print(
        f"\nabandoned nonce {start_nonce} filled by {fill.tx_hashes[-1]}; "
        f"payment got {outcome.nonce}"
    )


async def test_nonce_used_elsewhere_is_a_conflict_never_resigned(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    from eth_account import Account as Accounts

    from offramp.devstack.chain import HOT_WALLET_KEY

    recipient = Account.create().address
    async with payment_worker(dev_client, task_queue, {CHAIN: chain.config()}):
        first = await (
            await start_payment(
                dev_client,
                task_queue,
                payment_request(f"pre-{chain.chain_id}", recipient, "ETH", "0.1"),
            )
        ).result()
        assert first.nonce is not None
        # Someone uses the wallet's next nonce outside the engine.
        outsider = Accounts.from_key(HOT_WALLET_KEY).sign_transaction(
            {
                "chainId": chain.chain_id,
                "nonce": first.nonce + 1,
                "to": HOT_WALLET,
                "value": 0,
                "gas": 21_000,
                "maxFeePerGas": 10**10,
                "maxPriorityFeePerGas": 10**9,
            }
        )
        chain.w3.eth.send_raw_transaction(outsider.raw_transaction)
        payment_id = f"conflict-{chain.chain_id}"
        handle = await start_payment(
            dev_client,
            task_queue,
            payment_request(payment_id, recipient, "ETH", "0.2"),
        )
        outcome = await handle.result()

        async def reconciled() -> HotWalletState | None:
            state = await dev_client.get_workflow_handle(wallet_id(chain)).query(
                "state", result_type=HotWalletState
            )
            return state if state.chain_nonces and state.chain_nonces.latest > 1 else None

        wallet = await wait_for(reconciled, "the entity to reconcile after the conflict")
    assert outcome.status is PaymentStatus.NONCE_CONFLICT and outcome.needs_attention
    assert outcome.nonce == first.nonce + 1
    assert len(outcome.tx_hashes) == 1  # never re-signed at another nonce
    assert chain.eth_balance(recipient) == 10**17  # only the first payment arrived
    assert wallet.recent[payment_id].status is ReservationStatus.CONFLICT
    assert any("conflict" in line for line in wallet.attention)


async def test_cancel_before_a_nonce_and_after(
    dev_client: Client, task_queue: str, chain: PayChain
) -> None:
    """Cancelled while waiting for a nonce: CANCELLED, nothing reserved. Cancelled once a tx may
    exist: ignored, the payment completes."""
    chain.set_automine(False)
    config = chain.config(in_flight_limit=1, bump_after_seconds=120)
    async with payment_worker(dev_client, task_queue, {CHAIN: config}):
        first = await start_payment(
            dev_client,
            task_queue,
            payment_request(f"hold-{chain.chain_id}", Account.create().address, "ETH", "0.1"),
        )

        async def broadcast() -> PaymentState | None:
            state = await payment_state(first)
            return state if state.attempts else None

        await wait_for(broadcast, "the first broadcast")
        waiting = await start_payment(
            dev_client,
            task_queue,
            payment_request(f"wait-{chain.chain_id}", Account.create().address, "ETH", "0.1"),
        )

        async def reserving() -> PaymentState | None:
            state = await payment_state(waiting)
            return state if state.stage.value == "reserving_nonce" else None

        await wait_for(reserving, "the second payment to wait for a nonce")
        await waiting.cancel()
        cancelled = await waiting.result()
        assert cancelled.status is PaymentStatus.CANCELLED
        assert not cancelled.nonce_reserved and cancelled.tx_hashes == []

        await first.cancel()  # a tx may exist: ignored
        chain.set_automine(True)
        chain.mine()
        done = await first.result()
        state = await payment_state(first)
    assert done.status is PaymentStatus.CONFIRMED
    assert any("ignored" in e for e in state.events)
