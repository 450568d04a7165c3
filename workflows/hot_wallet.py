"""The hot-wallet entity: one workflow per (chain id, address) that hands out nonces.

- `reserve` (update, used with update-with-start): the payment's nonce, idempotent by payment id;
  refused while paused or at the in-flight limit (the caller retries), or over the daily cap.
- `tx_broadcast` / `nonce_settled` (signals): learns every hash and the fate of every nonce.
- `release` (signal) / `abandon` (update): a nonce that will never be used by its payment is
  filled with a 0-value self-transfer (child workflow `NonceFill`), so no later payment is stuck.
  Reservations never broadcast within the reservation timeout whose payment workflow has closed
  are abandoned the same way.
- `reconcile` (update) compares with the chain's nonces; `pause` / `resume` for operators;
  `state` query. Continues-as-new carrying its whole state (no allocation is ever lost).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from offramp.chain.models import (
        FillRequest,
        HotWalletInput,
        HotWalletState,
        NonceSettledSignal,
        ReleaseSignal,
        Reservation,
        ReservationKind,
        ReservationStatus,
        ReserveRequest,
        ReserveResult,
        TxAttempt,
        TxBroadcastSignal,
        WalletNonces,
        WorkflowClosedInput,
        nonce_fill_workflow_id,
        payment_workflow_id,
    )

ERR_DAILY_CAP = "DailyCapExceeded"
ERR_IN_FLIGHT_LIMIT = "InFlightLimit"
ERR_PAUSED = "WalletPaused"
ERR_RELEASED = "NonceReleased"

_LOG_LIMIT = 100
_KEEP_FINAL = timedelta(days=2)


@workflow.defn(name="HotWallet")
class HotWalletWorkflow:
    @workflow.init
    def __init__(self, inp: HotWalletInput) -> None:
        self.params = inp.params
        self.state = inp.state or HotWalletState()
        self._lock = asyncio.Lock()
        self._reconcile_requested = False

    # --- helpers -----------------------------------------------------------------------------

    def _now(self) -> datetime:
        return workflow.now()

    def _log(self, line: str) -> None:
        self.state.log.append(f"{self._now().isoformat(timespec='seconds')} {line}")
        del self.state.log[:-_LOG_LIMIT]

    def _attention(self, line: str) -> None:
        self.state.attention.append(line)
        del self.state.attention[:-_LOG_LIMIT]
        self._log(f"ATTENTION {line}")

    def _day(self) -> str:
        return self._now().date().isoformat()

    def _check_admission(self, req: ReserveRequest) -> None:
        existing = self.state.reservations.get(req.payment_id)
        if existing is not None:
            if existing.kind is ReservationKind.PAYMENT and existing.status in (
                ReservationStatus.ABANDONED,
                ReservationStatus.FILLED,
            ):
                raise ApplicationError(
                    f"payment {req.payment_id} released its nonce {existing.nonce}",
                    type=ERR_RELEASED,
                    non_retryable=True,
                )
            return  # idempotent: the same nonce again
        if self.state.paused:
            raise ApplicationError(
                f"hot wallet paused: {self.state.pause_reason or 'by an operator'}", type=ERR_PAUSED
            )
        limit = self.params.tuning.in_flight_limit
        if self.state.in_flight() >= limit:
            raise ApplicationError(f"{limit} payments in flight", type=ERR_IN_FLIGHT_LIMIT)
        spent = self.state.spent.get(self._day(), {}).get(req.asset, 0)
        if req.daily_cap_base_units and spent + req.amount_base_units > req.daily_cap_base_units:
            raise ApplicationError(
                f"daily cap of {req.asset} reached: {spent} base units reserved today, "
                f"{req.amount_base_units} more would exceed {req.daily_cap_base_units}",
                type=ERR_DAILY_CAP,
                non_retryable=True,
            )

    # --- reservations ---------------------------------------------------------------------------

    @workflow.update(description="Reserve the next nonce for a payment (idempotent by payment id)")
    async def reserve(self, req: ReserveRequest) -> ReserveResult:
        await workflow.wait_condition(lambda: self.state.next_nonce is not None)
        async with self._lock:
            self._check_admission(req)
            existing = self.state.reservations.get(req.payment_id)
            if existing is not None:
                return ReserveResult(nonce=existing.nonce, new=False)
            assert self.state.next_nonce is not None
            nonce = self.state.next_nonce
            self.state.next_nonce = nonce + 1
            day = self._day()
            now = self._now()
            self.state.reservations[req.payment_id] = Reservation(
                payment_id=req.payment_id,
                nonce=nonce,
                asset=req.asset,
                amount_base_units=req.amount_base_units,
                day=day,
                reserved_at=now,
                updated_at=now,
                payment_workflow_id=req.payment_workflow_id,
            )
            by_asset = self.state.spent.setdefault(day, {})
            by_asset[req.asset] = by_asset.get(req.asset, 0) + req.amount_base_units
            self._log(f"nonce {nonce} -> {req.payment_id}")
            return ReserveResult(nonce=nonce, new=True)

    @reserve.validator
    def _validate_reserve(self, req: ReserveRequest) -> None:
        # Refusals in the validator are not written to history: waiting callers retry cheaply.
        self._check_admission(req)

    @workflow.signal(description="A payment broadcast a hash for its nonce")
    def tx_broadcast(self, sig: TxBroadcastSignal) -> None:
        r = self.state.reservations.get(sig.payment_id)
        if r is None or r.nonce != sig.nonce:
            self._attention(f"broadcast for unknown reservation {sig.payment_id}/{sig.nonce}")
            return
        if sig.tx_hash not in r.tx_hashes:
            r.tx_hashes.append(sig.tx_hash)
            if sig.fields is not None:
                r.attempts.append(
                    TxAttempt(fields=sig.fields, tx_hash=sig.tx_hash, created_at=self._now())
                )
        if r.status is ReservationStatus.RESERVED:
            r.status = ReservationStatus.BROADCAST
        elif r.status is ReservationStatus.ABANDONED:
            self._attention(f"nonce {r.nonce} was abandoned, yet {sig.payment_id} broadcast")
        r.updated_at = self._now()

    @workflow.signal(description="A nonce's fate is known (confirmed, reverted, conflict, filled)")
    def nonce_settled(self, sig: NonceSettledSignal) -> None:
        r = self.state.reservations.get(sig.payment_id)
        if r is None or r.nonce != sig.nonce:
            self._attention(f"settlement for unknown reservation {sig.payment_id}/{sig.nonce}")
            return
        if r.status.final:
            return
        r.status = sig.status
        if sig.tx_hash and sig.tx_hash not in r.tx_hashes:
            r.tx_hashes.append(sig.tx_hash)
        if sig.note:
            r.note = sig.note
        r.updated_at = self._now()
        if sig.status in (ReservationStatus.CONFLICT, ReservationStatus.REVERTED):
            self._attention(f"nonce {r.nonce} ({r.payment_id}): {sig.status.value} {sig.note}")
        if sig.status is ReservationStatus.CONFLICT:
            self._reconcile_requested = True  # the wallet is used elsewhere: look at the chain
        self._log(f"nonce {r.nonce} {sig.status.value}")

    def _abandon(self, payment_id: str, reason: str, *, orphaned: bool = False) -> bool:
        """Mark a nonce to be filled. `orphaned`: its payment broadcast and then closed without
        reporting; the fill replaces a still-pending tx or finds the nonce used."""
        r = self.state.reservations.get(payment_id)
        allowed = (
            (ReservationStatus.RESERVED, ReservationStatus.BROADCAST)
            if orphaned
            else (ReservationStatus.RESERVED,)
        )
        if r is None or r.status not in allowed:
            return False
        was_broadcast = r.status is ReservationStatus.BROADCAST
        r.status = ReservationStatus.ABANDONED
        r.note = reason
        r.updated_at = self._now()
        if was_broadcast:
            self._attention(f"nonce {r.nonce} ({payment_id}): {reason}")
        else:
            # Never sent: its amount no longer counts against the daily cap.
            by_asset = self.state.spent.get(r.day, {})
            if r.asset in by_asset:
                by_asset[r.asset] = max(0, by_asset[r.asset] - r.amount_base_units)
        self._log(f"nonce {r.nonce} abandoned by {payment_id}: {reason}")
        return True

    @workflow.signal(description="A payment will never send with its nonce: fill it")
    def release(self, sig: ReleaseSignal) -> None:
        if not self._abandon(sig.payment_id, sig.reason):
            r = self.state.reservations.get(sig.payment_id)
            if r is not None and r.status is not ReservationStatus.ABANDONED:
                self._attention(f"release of {sig.payment_id} ignored: {r.status.value}")

    @workflow.update(description="Operator: declare a reserved, never broadcast nonce abandoned")
    def abandon(self, payment_id: str) -> bool:
        return self._abandon(payment_id, "abandoned by an operator")

    # --- operators ------------------------------------------------------------------------------

    @workflow.update(description="Stop handing out nonces (payments wait)")
    def pause(self, reason: str) -> HotWalletState:
        self.state.paused = True
        self.state.pause_reason = reason or None
        self._log(f"paused: {reason}")
        return self.state

    @workflow.update(description="Hand out nonces again")
    def resume(self) -> HotWalletState:
        self.state.paused = False
        self.state.pause_reason = None
        self._log("resumed")
        return self.state

    @workflow.update(description="Compare with the chain's nonces now")
    async def reconcile(self) -> HotWalletState:
        await workflow.wait_condition(lambda: self.state.next_nonce is not None)
        async with self._lock:
            await self._reconcile()
        return self.state

    @workflow.query(description="One payment's reservation (nonce, status, signed attempts)")
    def reservation(self, payment_id: str) -> Reservation | None:
        return self.state.reservations.get(payment_id)

    @workflow.query(
        name="state", description="Everything: next nonce, reservations, hashes, caps, attention"
    )
    def get_state(self) -> HotWalletState:
        return self.state

    # --- the loop -------------------------------------------------------------------------------

    async def _read_nonces(self) -> WalletNonces:
        nonces: WalletNonces = await workflow.execute_activity(
            "read_wallet_nonces",
            self.params.chain,
            result_type=WalletNonces,
            start_to_close_timeout=timedelta(seconds=self.params.tuning.rpc_timeout_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary="read the hot wallet's nonces",
        )
        return nonces

    async def _reconcile(self) -> None:
        nonces = await self._read_nonces()
        self.state.chain_nonces = nonces
        self.state.reconciled_at = self._now()
        if self.state.next_nonce is None:
            self.state.next_nonce = nonces.pending
            self._log(f"started at the chain's pending nonce {nonces.pending}")
            return
        if nonces.latest > self.state.next_nonce:
            self._attention(
                f"the chain's nonce {nonces.latest} is ahead of ours {self.state.next_nonce}: "
                "the wallet was used outside the engine; skipping ahead"
            )
            self.state.next_nonce = nonces.latest
        open_nonces = {r.nonce for r in self.state.reservations.values() if not r.status.final}
        if nonces.pending < self.state.next_nonce and not open_nonces:
            # Nothing of ours is open, yet the chain has not used our last nonces: it was reset
            # or deeply reorged. Continue from the chain, or every later payment would wait
            # behind a gap nobody fills.
            self._attention(
                f"the chain's pending nonce {nonces.pending} is behind ours "
                f"{self.state.next_nonce} with nothing in flight (chain reset or deep reorg): "
                f"continuing from {nonces.pending}"
            )
            self.state.next_nonce = nonces.pending
        self._log(f"reconciled: chain latest {nonces.latest} pending {nonces.pending}")

    def _sweep_due(self, r: Reservation) -> datetime | None:
        """When to check whether a reservation's payment workflow still runs, if ever."""
        if r.kind is not ReservationKind.PAYMENT:
            return None
        if r.status is ReservationStatus.RESERVED:
            since = r.reserved_at
        elif r.status is ReservationStatus.BROADCAST:
            since = r.updated_at
        else:
            return None
        if r.checked_at is not None and r.checked_at > since:
            since = r.checked_at
        return since + timedelta(seconds=self.params.tuning.reservation_timeout_seconds)

    def _sweep_deadline(self) -> datetime | None:
        times = [t for r in self.state.reservations.values() if (t := self._sweep_due(r))]
        return min(times) if times else None

    async def _sweep(self) -> None:
        """A reservation whose payment workflow closed without reporting the nonce's fate is
        abandoned: never broadcast (or broadcast, then terminated) -> fill the nonce."""
        now = self._now()
        overdue = [
            r
            for r in self.state.reservations.values()
            if (due := self._sweep_due(r)) is not None and due <= now
        ]
        for r in overdue:
            wf_id = r.payment_workflow_id or payment_workflow_id(r.payment_id)
            closed = await workflow.execute_activity(
                "workflow_closed",
                WorkflowClosedInput(workflow_id=wf_id),
                result_type=bool,
                start_to_close_timeout=timedelta(seconds=30),
                summary=f"is {wf_id} closed?",
            )
            if not closed:
                r.checked_at = now  # still running: look again after another timeout
            elif r.status is ReservationStatus.RESERVED:
                self._abandon(r.payment_id, f"payment workflow {wf_id} closed without sending")
            elif r.status is ReservationStatus.BROADCAST:
                self._abandon(
                    r.payment_id,
                    f"payment workflow {wf_id} closed while its tx was unresolved",
                    orphaned=True,
                )

    def _fills_due(self) -> list[Reservation]:
        return [
            r
            for r in self.state.reservations.values()
            if r.status is ReservationStatus.ABANDONED and r.fill_workflow_id is None
        ]

    async def _start_fills(self) -> None:
        wallet_id = workflow.info().workflow_id
        for r in self._fills_due():
            fill_id = nonce_fill_workflow_id(wallet_id, r.nonce)
            # An earlier run may have started it: it reports through nonce_settled.
            with contextlib.suppress(WorkflowAlreadyStartedError):
                await workflow.start_child_workflow(
                    "NonceFill",
                    FillRequest(
                        chain=self.params.chain,
                        chain_id=self.params.chain_id,
                        hot_wallet=self.params.address,
                        nonce=r.nonce,
                        fill_id=r.payment_id,
                        wallet_workflow_id=wallet_id,
                        tuning=self.params.tuning,
                    ),
                    id=fill_id,
                    parent_close_policy=workflow.ParentClosePolicy.ABANDON,
                    static_summary=f"fill nonce {r.nonce} with a 0-value self-transfer",
                )
            r.fill_workflow_id = fill_id
            self._log(f"filling nonce {r.nonce}: {fill_id}")

    def _prune(self) -> None:
        cutoff = self._now() - _KEEP_FINAL
        self.state.reservations = {
            k: r
            for k, r in self.state.reservations.items()
            if not (r.status.final and r.updated_at < cutoff)
        }
        keep_days = {self._day(), (self._now() - timedelta(days=1)).date().isoformat()}
        self.state.spent = {d: v for d, v in self.state.spent.items() if d in keep_days}

    @workflow.run
    async def run(self, inp: HotWalletInput) -> None:
        del inp  # taken in __init__
        async with self._lock:
            await self._reconcile()  # at creation and at the start of every continued run
        while True:
            deadline = self._sweep_deadline()
            timeout = max(deadline - self._now(), timedelta(milliseconds=100)) if deadline else None
            try:
                await workflow.wait_condition(
                    lambda t=timeout: (  # type: ignore[misc]
                        bool(self._fills_due())
                        or self._reconcile_requested
                        or (t is None and self._sweep_deadline() is not None)
                        or workflow.info().is_continue_as_new_suggested()
                    ),
                    timeout=timeout,
                )
            except TimeoutError:
                async with self._lock:
                    await self._sweep()
            if self._reconcile_requested:
                self._reconcile_requested = False
                async with self._lock:
                    await self._reconcile()
            await self._start_fills()
            if workflow.info().is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                await self._start_fills()
                self._prune()
                self.state.runs += 1
                workflow.continue_as_new(HotWalletInput(params=self.params, state=self.state))
