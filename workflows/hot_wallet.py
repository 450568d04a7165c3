"""The hot-wallet entity: one workflow per (chain id, address) that hands out nonces.

- `request_nonce` (signal, sent with signal-with-start by the payment's `request_nonce` activity):
  queued and answered in order with the signal `nonce_answer` to the payment, once there is room
  (in-flight limit, not paused) and the wallet's balances cover every open reservation plus this
  one (amount per asset + gas budget); idempotent by payment id (a held nonce is answered at
  once). A payment the wallet cannot cover waits without a nonce (told `waiting_funds`) or is
  rejected `insufficient_balance` (chain config `on_insufficient_funds`).
- `reserve` (update, the old protocol, kept for payment runs started before `nonce-by-signal`):
  the same nonce book; refused while paused or at the in-flight limit, or over the daily cap.
- `tx_broadcast` / `nonce_settled` (signals): learns every hash and the fate of every nonce.
- `release` (signal) / `abandon` (update): a nonce that will never be used by its payment is
  filled with a 0-value self-transfer (child workflow `NonceFill`), so no later payment is stuck.
  Reservations never broadcast within the reservation timeout whose payment workflow has closed
  are abandoned the same way.
- `reconcile` (update) compares with the chain's nonces: a chain read only ever raises
  `next_nonce`; a chain behind us with nothing open is flagged (`nonce_behind`), and `set_nonce`
  (operator update with a reason, `offramp wallet set-nonce`) is the only way down.
  `pause` / `resume` for operators; operator updates return a small WalletSummary.
- State is bounded: open reservations, the queue, and an index of the latest final reservations
  (`recent`, capped by count). Continues-as-new when suggested or past a fixed history budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from offramp.chain import names
    from offramp.chain.models import (
        BalancesInput,
        FillRequest,
        HotWalletInput,
        HotWalletState,
        InsufficientFunds,
        NonceAnswer,
        NonceAnswerKind,
        NonceRequest,
        NonceSettledSignal,
        PaymentLookup,
        PendingAnswer,
        RecentReservation,
        ReleaseSignal,
        Reservation,
        ReservationKind,
        ReservationStatus,
        ReserveRequest,
        ReserveResult,
        SetNonceRequest,
        TxAttempt,
        TxBroadcastSignal,
        WalletBalances,
        WalletNonces,
        WalletNoncesInput,
        WalletSummary,
        WorkflowClosedInput,
        nonce_fill_workflow_id,
        payment_workflow_id,
    )
    from offramp.rejections import RejectReason

# Error types of the updates (offramp/chain/names.py), re-exported for tests.
ERR_DAILY_CAP = names.ERR_DAILY_CAP
ERR_IN_FLIGHT_LIMIT = names.ERR_IN_FLIGHT_LIMIT
ERR_PAUSED = names.ERR_PAUSED
ERR_RELEASED = names.ERR_RELEASED

_LOG_LIMIT = 100
_KEEP_FINAL = timedelta(days=2)
_NATIVE = "native"
_PATCH_V2 = "hot-wallet-v2"  # bounded state + budgeted continue-as-new + funds admission
# Answers not yet sent ride in the continue-as-new input instead of being drained first: under a
# steady stream of requests a drain that answers "everything, including what arrives while
# answering" never ends, and the history grew past 23,000 events with no continue-as-new.
_PATCH_CARRY_ANSWERS = "hot-wallet-carry-answers"
# Payments beyond the queue wait on a waitlist and are called back when the queue has room,
# instead of backing off on their own: 2,000 orders through one wallet left 234 payments asleep
# for 16 minutes (their backoff had doubled to 960 s) while the queue stood empty.
_PATCH_CALL_BACK = "hot-wallet-call-back"


@workflow.defn(name="HotWallet")
class HotWalletWorkflow:
    @workflow.init
    def __init__(self, inp: HotWalletInput) -> None:
        self.params = inp.params
        self.state = inp.state or HotWalletState()
        self._lock = asyncio.Lock()
        self._reconcile_requested = False
        # Answers to send; the previous run's unsent ones first.
        self._outbox: list[tuple[str, NonceAnswer]] = [
            (a.payment_workflow_id, a.answer) for a in self.state.answers
        ]
        self.state.answers = []
        self._v2 = False  # set in run(): whether this run took the bounded-state patch
        self._carry_answers = False  # set by _drain: unsent answers cross continue-as-new
        self._call_back = False  # set in run(): whether this run keeps a waitlist
        # Called back, not yet asked again (counted as queued; a new run forgets them, so at
        # most one batch too many is called back: those are waitlisted again).
        self._called_back: set[str] = set()
        self._compact()  # an old run's input carries every final reservation: index them

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

    def _summary(self) -> WalletSummary:
        s = self.state
        return WalletSummary(
            next_nonce=s.next_nonce,
            paused=s.paused,
            pause_reason=s.pause_reason,
            in_flight=s.in_flight(),
            queued=len(s.queue),
            runs=s.runs,
            chain_nonces=s.chain_nonces,
            nonce_behind=s.nonce_behind,
            attention=s.attention[-5:],
        )

    # --- the nonce book: open reservations + a bounded index of final ones -------------------

    def _final(self, r: Reservation, mined_hash: str | None = None) -> None:
        """A reservation reached its fate: move it to the index; what it held of the funds may
        still be in the last balance read, so it counts as debited until the next read."""
        self.state.reservations.pop(r.payment_id, None)
        self.state.recent.pop(r.payment_id, None)
        mined = [a for a in r.attempts if a.tx_hash == mined_hash] or r.attempts[-1:]
        self.state.recent[r.payment_id] = RecentReservation(
            nonce=r.nonce,
            status=r.status,
            tx_hashes=r.tx_hashes,
            updated_at=r.updated_at,
            attempt=mined[0] if mined else None,
        )
        if self.state.balances is not None:
            for key, amount in self._holds(r).items():
                self.state.debited_since_read[key] = (
                    self.state.debited_since_read.get(key, 0) + amount
                )
        self._trim_recent()

    def _trim_recent(self, limit: int | None = None) -> None:
        excess = len(self.state.recent) - (
            self.params.limits.recent_limit if limit is None else limit
        )
        if excess <= 0:
            return
        for payment_id in list(self.state.recent)[:excess]:  # oldest first (insertion order)
            gone = self.state.recent.pop(payment_id)
            if self.state.evicted_until is None or gone.updated_at > self.state.evicted_until:
                self.state.evicted_until = gone.updated_at

    def _compact(self) -> None:
        for r in sorted(self.state.reservations.values(), key=lambda r: r.updated_at):
            if r.status.final:
                self._final(r)

    def _known(self, payment_id: str) -> tuple[int, ReservationStatus, list[str]] | None:
        r = self.state.reservations.get(payment_id)
        if r is not None:
            return r.nonce, r.status, r.tx_hashes
        old = self.state.recent.get(payment_id)
        return (old.nonce, old.status, old.tx_hashes) if old is not None else None

    def _released(self, payment_id: str) -> bool:
        known = self._known(payment_id)
        return known is not None and known[1] in (
            ReservationStatus.ABANDONED,
            ReservationStatus.FILLED,
        )

    def _reserve_nonce(self, req: ReserveRequest | NonceRequest) -> int:
        assert self.state.next_nonce is not None
        nonce = self.state.next_nonce
        self.state.next_nonce = nonce + 1
        day = self._day()
        now = self._now()
        funds = (
            {
                "token_address": req.token_address,
                "native_value_wei": req.native_value_wei,
                "gas_budget_wei": req.gas_budget_wei,
            }
            if isinstance(req, NonceRequest)
            else {}
        )
        self.state.reservations[req.payment_id] = Reservation(
            payment_id=req.payment_id,
            nonce=nonce,
            asset=req.asset,
            amount_base_units=req.amount_base_units,
            day=day,
            reserved_at=now,
            updated_at=now,
            payment_workflow_id=req.payment_workflow_id,
            **funds,
        )
        by_asset = self.state.spent.setdefault(day, {})
        by_asset[req.asset] = by_asset.get(req.asset, 0) + req.amount_base_units
        self._log(f"nonce {nonce} -> {req.payment_id}")
        return nonce

    def _over_daily_cap(self, req: ReserveRequest | NonceRequest) -> str | None:
        spent = self.state.spent.get(self._day(), {}).get(req.asset, 0)
        if req.daily_cap_base_units and spent + req.amount_base_units > req.daily_cap_base_units:
            return (
                f"daily cap of {req.asset} reached: {spent} base units reserved today, "
                f"{req.amount_base_units} more would exceed {req.daily_cap_base_units}"
            )
        return None

    # --- the old protocol: `reserve` update (payment runs from before `nonce-by-signal`) -------

    def _check_admission(self, req: ReserveRequest) -> None:
        if self._known(req.payment_id) is not None:
            if self._released(req.payment_id):
                raise ApplicationError(
                    f"payment {req.payment_id} released its nonce",
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
        capped = self._over_daily_cap(req)
        if capped:
            raise ApplicationError(capped, type=ERR_DAILY_CAP, non_retryable=True)

    @workflow.update(
        name=names.RESERVE_UPDATE,
        description="Old protocol: reserve the next nonce (idempotent by payment id)",
    )
    async def reserve(self, req: ReserveRequest) -> ReserveResult:
        await workflow.wait_condition(lambda: self.state.next_nonce is not None)
        async with self._lock:
            self._check_admission(req)
            known = self._known(req.payment_id)
            if known is not None:
                return ReserveResult(nonce=known[0], new=False)
            return ReserveResult(nonce=self._reserve_nonce(req), new=True)

    @reserve.validator
    def _validate_reserve(self, req: ReserveRequest) -> None:
        # Refusals in the validator are not written to history: waiting callers retry.
        self._check_admission(req)

    # --- the signal protocol: request_nonce -> queue -> admission -> nonce_answer ------------

    @workflow.signal(
        name=names.REQUEST_NONCE_SIGNAL,
        description="A payment asks for its nonce (answered with `nonce_answer`)",
    )
    def request_nonce(self, req: NonceRequest) -> None:
        if req.policy is not None:
            self.state.policy = req.policy
            req = req.model_copy(update={"policy": None})  # stored once, not per queued request
        known = self._known(req.payment_id)
        if known is not None:
            nonce, status, hashes = known
            if self._released(req.payment_id):
                self._answer(req, NonceAnswerKind.RELEASED, reason="the payment released its nonce")
            else:
                self._answer(
                    req,
                    NonceAnswerKind.GRANTED,
                    nonce=nonce,
                    settled=status if status.final else None,
                    tx_hashes=hashes,
                )
            return
        for i, queued in enumerate(self.state.queue):
            if queued.payment_id == req.payment_id:
                # Asked again: keep its place; one told "insufficient funds" is not told again
                # (the same answer would only add to both histories).
                self.state.queue[i] = req
                return
        if req.rerun and not self._never_evicted(req):
            self._answer(
                req,
                NonceAnswerKind.NEEDS_PERSON,
                reason=(
                    "a re-run of this payment: this hot wallet no longer indexes reservations "
                    f"final before {self.state.evicted_until}, and the payment's first run "
                    f"started {req.first_started_at or 'at an unknown time'}: an earlier run may "
                    "have paid; never a new nonce without a person"
                ),
            )
            self._attention(f"re-run of {req.payment_id} not given a nonce: it may have paid")
            return
        self._called_back.discard(req.payment_id)
        limits = self.params.limits
        if len(self.state.queue) >= limits.queue_limit:
            if self._waitlist(req):
                return
            self._answer(
                req,
                NonceAnswerKind.RETRY_LATER,
                reason=f"{limits.queue_limit} payments queued for this hot wallet",
                retry_after_seconds=limits.retry_later_seconds,
            )
            return
        self.state.waitlist.pop(req.payment_id, None)
        self.state.queue.append(req)

    def _waitlist(self, req: NonceRequest) -> bool:
        """Put a wakeable payment the full queue turns away on the waitlist (keeping its place
        if it is there already) and tell it so; False if this run keeps none or it is full."""
        limits, waitlist = self.params.limits, self.state.waitlist
        if not (self._call_back and req.wakeable):
            return False
        if req.payment_id not in waitlist and len(waitlist) >= limits.waitlist_limit:
            return False
        waitlist[req.payment_id] = req.payment_workflow_id
        self._answer(
            req,
            NonceAnswerKind.RETRY_LATER,
            reason=f"{limits.queue_limit} payments queued for this hot wallet: waitlisted, "
            "called back when there is room",
            retry_after_seconds=limits.call_back_timeout_seconds,
            call_back=True,
        )
        return True

    def _call_back_waitlisted(self) -> None:
        """Once the queue is half empty, call back as many waitlisted payments (oldest first)
        as it has room for: each asks again at once."""
        limits, waitlist = self.params.limits, self.state.waitlist
        if not waitlist or len(self.state.queue) > limits.queue_limit // 2:
            return
        room = limits.queue_limit - len(self.state.queue) - len(self._called_back)
        for payment_id in list(waitlist)[: max(room, 0)]:
            self._called_back.add(payment_id)
            # Its "waitlisted" answer may still be unsent: answers go out concurrently, so the
            # call-back could arrive first and be overwritten. The call-back replaces it.
            self._outbox = [(w, a) for w, a in self._outbox if a.payment_id != payment_id]
            self._tell(
                payment_id,
                waitlist.pop(payment_id),
                NonceAnswerKind.RETRY_LATER,
                reason="the hot wallet's queue has room: ask again",
                retry_after_seconds=0,
            )

    def _never_evicted(self, req: NonceRequest) -> bool:
        """Whether no reservation of this (re-run) payment can have left the index: every one
        is made after the payment's first run started, and the index lost only those final up
        to `evicted_until`."""
        until = self.state.evicted_until
        if until is None:
            return True
        return req.first_started_at is not None and req.first_started_at > until

    def _answer(self, req: NonceRequest, kind: NonceAnswerKind, **fields: object) -> None:
        self._tell(req.payment_id, req.payment_workflow_id, kind, **fields)

    def _tell(
        self, payment_id: str, workflow_id: str, kind: NonceAnswerKind, **fields: object
    ) -> None:
        """Queue an answer for the payment `workflow_id` (sent by `_send_answers`)."""
        answer = NonceAnswer.model_validate(
            {
                "payment_id": payment_id,
                "kind": kind,
                "wallet_workflow_id": workflow.info().workflow_id,
                **fields,
            }
        )
        self._outbox.append((workflow_id, answer))

    def _holds(self, r: Reservation | NonceRequest) -> dict[str, int]:
        """What a reservation (or a request) needs of the wallet's funds, by funds key."""
        holds = {_NATIVE: r.native_value_wei + r.gas_budget_wei}
        if r.token_address:
            holds[r.token_address.lower()] = r.amount_base_units
        return holds

    def _shortfall(self, req: NonceRequest) -> str | None:
        """None if the balances cover every open reservation plus `req`, else what is short."""
        balances = self.state.balances
        assert balances is not None
        outstanding: dict[str, int] = {}
        for r in self.state.reservations.values():
            if not r.status.final:
                for key, amount in self._holds(r).items():
                    outstanding[key] = outstanding.get(key, 0) + amount
        for key, need in self._holds(req).items():
            have = balances.native_wei if key == _NATIVE else balances.tokens.get(key, 0)
            free = have - self.state.debited_since_read.get(key, 0) - outstanding.get(key, 0)
            if need > free:
                what = (
                    "wei (value + gas budget)" if key == _NATIVE else f"base units of {req.asset}"
                )
                return (
                    f"insufficient funds: the hot wallet can cover {max(free, 0)} {what} beyond "
                    f"its open payments, this payment needs {need}"
                )
        return None

    def _balances_stale(self) -> bool:
        b = self.state.balances
        if b is None or b.read_at is None:
            return True
        age = (self._now() - b.read_at).total_seconds()
        return age >= self.state.policy.funds_recheck_seconds

    def _funds_known(self) -> bool:
        """Whether the balances include every token a queued request needs."""
        b = self.state.balances
        if b is None:
            return False
        return all(
            not q.token_address or q.token_address.lower() in b.tokens for q in self.state.queue
        )

    def _admit(self) -> bool:
        """Hand out nonces to queued requests in order, as room and funds allow. Returns True
        if a request is short of funds and the balances are worth reading again."""
        if self._admission_blocked():
            return False
        if not self._funds_known():
            return bool(self.state.queue)
        limit = self.params.tuning.in_flight_limit
        keep: list[NonceRequest] = []
        reread = False
        for i, req in enumerate(self.state.queue):
            if self.state.in_flight() >= limit:
                keep.extend(self.state.queue[i:])
                break
            capped = self._over_daily_cap(req)
            if capped:
                self._answer(
                    req,
                    NonceAnswerKind.REJECTED,
                    rejection_code=RejectReason.DAILY_CAP,
                    reason=capped,
                )
                continue
            short = self._shortfall(req)
            if short is None:
                nonce = self._reserve_nonce(req)
                self._answer(req, NonceAnswerKind.GRANTED, nonce=nonce)
                continue
            told = req.payment_id in self.state.funds_waiting
            if self._funds_stale() if told else self._balances_stale():
                reread = True
            elif self.state.policy.on_insufficient_funds is InsufficientFunds.REJECT:
                self._answer(
                    req,
                    NonceAnswerKind.REJECTED,
                    rejection_code=RejectReason.INSUFFICIENT_BALANCE,
                    reason=short,
                )
                continue
            elif req.payment_id not in self.state.funds_waiting:
                self.state.funds_waiting.append(req.payment_id)
                self._answer(req, NonceAnswerKind.WAITING_FUNDS, reason=short)
            keep.append(req)
        self.state.queue = keep
        self._call_back_waitlisted()
        waiting = {q.payment_id for q in keep}
        self.state.funds_waiting = [p for p in self.state.funds_waiting if p in waiting]
        if not self.state.funds_waiting:
            self.state.funds_recheck_seconds = None  # the next wait for funds starts quick
        return reread

    def _waiting_for_funds(self) -> bool:
        return bool(self.state.funds_waiting)

    async def _read_balances(self) -> None:
        debited_before = dict(self.state.debited_since_read)
        tokens = sorted(
            {q.token_address.lower() for q in self.state.queue if q.token_address}
            | {r.token_address.lower() for r in self.state.reservations.values() if r.token_address}
        )
        balances: WalletBalances = await workflow.execute_activity(
            "read_wallet_balances",
            BalancesInput(chain=self.params.chain, address=self.params.address, tokens=tokens),
            result_type=WalletBalances,
            start_to_close_timeout=timedelta(seconds=self.params.tuning.rpc_timeout_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary="read the hot wallet's balances",
        )
        self.state.balances = balances.model_copy(update={"read_at": self._now()})
        if self._v2:
            # Debits of reservations final while the read ran may not be in what it saw (nor
            # in a lagging node's answer): they stay until the next read.
            self.state.debited_since_read = {
                key: left
                for key, amount in self.state.debited_since_read.items()
                if (left := amount - debited_before.get(key, 0)) > 0
            }
        else:
            self.state.debited_since_read = {}

    async def _send_answers(self) -> None:
        if not self._outbox:
            return
        batch, self._outbox = self._outbox, []
        await asyncio.gather(*(self._send_answer(wf_id, a) for wf_id, a in batch))

    async def _send_answer(self, workflow_id: str, answer: NonceAnswer) -> None:
        try:
            await workflow.get_external_workflow_handle(workflow_id).signal("nonce_answer", answer)
        except Exception as exc:  # the payment is gone: a nonce it was given must be filled
            if answer.kind is NonceAnswerKind.GRANTED and answer.settled is None:
                self._abandon(answer.payment_id, f"its payment {workflow_id} is gone: {exc}")

    # --- what payments report -------------------------------------------------------------------

    @workflow.signal(
        name=names.TX_BROADCAST_SIGNAL, description="A payment broadcast a hash for its nonce"
    )
    def tx_broadcast(self, sig: TxBroadcastSignal) -> None:
        r = self.state.reservations.get(sig.payment_id)
        if r is None or r.nonce != sig.nonce:
            if sig.payment_id not in self.state.recent:
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

    @workflow.signal(
        name=names.NONCE_SETTLED_SIGNAL,
        description="A nonce's fate is known (confirmed, reverted, conflict, filled)",
    )
    def nonce_settled(self, sig: NonceSettledSignal) -> None:
        r = self.state.reservations.get(sig.payment_id)
        if r is None or r.nonce != sig.nonce:
            if sig.payment_id not in self.state.recent:
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
        if r.status.final:
            self._final(r, sig.tx_hash)

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
            # Nor against the funds: only the fill's gas (21,000 x the fee cap) remains.
            r.token_address = None
            r.native_value_wei = 0
            r.gas_budget_wei = min(
                r.gas_budget_wei, 21_000 * self.params.tuning.max_fee_per_gas_cap_wei
            )
        self._log(f"nonce {r.nonce} abandoned by {payment_id}: {reason}")
        return True

    @workflow.signal(
        name=names.RELEASE_SIGNAL, description="A payment will never send with its nonce: fill it"
    )
    def release(self, sig: ReleaseSignal) -> None:
        before = len(self.state.queue)
        self.state.queue = [q for q in self.state.queue if q.payment_id != sig.payment_id]
        if len(self.state.queue) < before:
            self._log(f"request of {sig.payment_id} withdrawn: {sig.reason}")
            return
        if not self._abandon(sig.payment_id, sig.reason):
            known = self._known(sig.payment_id)
            if known is not None and known[1] is not ReservationStatus.ABANDONED:
                self._attention(f"release of {sig.payment_id} ignored: {known[1].value}")

    @workflow.update(
        name=names.ABANDON_UPDATE,
        description="Operator: declare a reserved, never broadcast nonce abandoned",
    )
    def abandon(self, payment_id: str) -> bool:
        return self._abandon(payment_id, "abandoned by an operator")

    # --- operators ------------------------------------------------------------------------------

    @workflow.update(name=names.PAUSE_UPDATE, description="Stop handing out nonces (payments wait)")
    def pause(self, reason: str) -> WalletSummary:
        self.state.paused = True
        self.state.pause_reason = reason or None
        self._log(f"paused: {reason}")
        return self._summary()

    @workflow.update(name=names.RESUME_UPDATE, description="Hand out nonces again")
    def resume(self) -> WalletSummary:
        self.state.paused = False
        self.state.pause_reason = None
        self._log("resumed")
        return self._summary()

    @workflow.update(name=names.RECONCILE_UPDATE, description="Compare with the chain's nonces now")
    async def reconcile(self) -> WalletSummary:
        await workflow.wait_condition(lambda: self.state.next_nonce is not None)
        async with self._lock:
            await self._reconcile()
        return self._summary()

    @workflow.update(
        name=names.SET_NONCE_UPDATE,
        description="Operator: set next_nonce (the only way it goes down)",
    )
    def set_nonce(self, req: SetNonceRequest) -> WalletSummary:
        old = self.state.next_nonce
        self.state.next_nonce = req.nonce
        self.state.nonce_behind = None
        self._attention(f"next nonce set {old} -> {req.nonce} by an operator: {req.reason}")
        return self._summary()

    @set_nonce.validator
    def _validate_set_nonce(self, req: SetNonceRequest) -> None:
        open_nonces = [r.nonce for r in self.state.reservations.values() if not r.status.final]
        if open_nonces and req.nonce <= max(open_nonces):
            raise ApplicationError(
                f"nonces up to {max(open_nonces)} are still open: wait until they are final",
                non_retryable=True,
            )
        if not req.reason.strip():
            raise ApplicationError("a reason is required", non_retryable=True)

    @workflow.query(
        name=names.RESERVATION_QUERY,
        description="One payment's reservation (nonce, status, signed attempts)",
    )
    def reservation(self, payment_id: str) -> Reservation | None:
        r = self.state.reservations.get(payment_id)
        if r is not None:
            return r
        old = self.state.recent.get(payment_id)
        if old is None:
            return None
        return Reservation(
            payment_id=payment_id,
            nonce=old.nonce,
            asset="",
            amount_base_units=0,
            day="",
            status=old.status,
            reserved_at=old.updated_at,
            updated_at=old.updated_at,
            tx_hashes=old.tx_hashes,
            attempts=[old.attempt] if old.attempt else [],
        )

    @workflow.query(
        name=names.PAYMENT_LOOKUP_QUERY,
        description="What this wallet knows of a payment: reservation, or queued",
    )
    def payment_lookup(self, payment_id: str) -> PaymentLookup:
        return PaymentLookup(
            reservation=self.reservation(payment_id),
            queued=any(q.payment_id == payment_id for q in self.state.queue),
        )

    @workflow.query(
        name="state", description="Everything: next nonce, reservations, hashes, caps, attention"
    )
    def get_state(self) -> HotWalletState:
        return self.state

    @workflow.query(
        name=names.SUMMARY_QUERY,
        description="Small summary: next nonce, in flight, queued, attention",
    )
    def summary(self) -> WalletSummary:
        return self._summary()

    # --- the loop -------------------------------------------------------------------------------

    async def _read_nonces(self) -> WalletNonces:
        # New runs name the wallet (a pool has several per chain); the bare chain is for replay.
        arg: object = (
            WalletNoncesInput(chain=self.params.chain, address=self.params.address)
            if self._v2
            else self.params.chain
        )
        nonces: WalletNonces = await workflow.execute_activity(
            "read_wallet_nonces",
            arg,
            result_type=WalletNonces,
            start_to_close_timeout=timedelta(seconds=self.params.tuning.rpc_timeout_seconds),
            retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=30)),
            summary="read the hot wallet's nonces",
        )
        return nonces

    async def _reconcile(self) -> None:
        """Chain reads only ever raise next_nonce: a lagging or lying node must never make us
        hand out a used nonce. A chain behind us with nothing open is for a person."""
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
        open_nonces = [r for r in self.state.reservations.values() if not r.status.final]
        if not self._v2:
            # A run from before v2 replays what it recorded: it followed a chain behind it.
            if nonces.pending < self.state.next_nonce and not open_nonces:
                self._attention(
                    f"the chain's pending nonce {nonces.pending} is behind ours "
                    f"{self.state.next_nonce} with nothing in flight (chain reset or deep "
                    f"reorg): continuing from {nonces.pending}"
                )
                self.state.next_nonce = nonces.pending
            self._log(f"reconciled: chain latest {nonces.latest} pending {nonces.pending}")
            return
        if nonces.pending < self.state.next_nonce and not open_nonces:
            if self.state.nonce_behind != nonces:
                self._attention(
                    f"the chain's pending nonce {nonces.pending} is behind ours "
                    f"{self.state.next_nonce} with nothing in flight (a lagging node, a reset "
                    "chain or a deep reorg): NOT lowering; a person may `set_nonce` with a reason"
                )
            self.state.nonce_behind = nonces
        else:
            self.state.nonce_behind = None
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
        self._trim_recent()
        if not self._v2:
            while (
                self.state.recent
                and len(self.state.model_dump_json()) > self.params.limits.state_bytes_budget
            ):
                self._trim_recent(limit=len(self.state.recent) * 9 // 10)
            return
        # The index has its own budget (a long queue never empties it); then the whole input is
        # measured once, and only a state still over budget trims the index further.
        limits = self.params.limits
        sizes = [len(r.model_dump_json()) + len(k) + 4 for k, r in self.state.recent.items()]
        total, keep = sum(sizes), len(sizes)
        over = len(self.state.model_dump_json()) - limits.state_bytes_budget
        budget = (
            min(limits.recent_bytes_budget, total - over)
            if over > 0
            else limits.recent_bytes_budget
        )
        for size in sizes:
            if total <= budget or keep == 0:
                break
            total -= size
            keep -= 1
        self._trim_recent(limit=keep)

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested():
            return True
        # Worker Versioning: runs are pinned to their build; a new current build (set at a
        # deploy) is the entity's cue to continue as new onto it, so the old build can drain.
        # Never true before versioning was on, so recorded histories replay unchanged.
        if info.is_target_worker_deployment_version_changed():
            return True
        # v2: a fixed budget well below the limits, whatever the server's suggestion is.
        return self._v2 and (
            info.get_current_history_length() >= self.params.limits.history_events_budget
            or info.get_current_history_size() >= self.params.limits.history_bytes_budget
        )

    def _work_due(self, timeout: timedelta | None) -> bool:
        return (
            bool(self._fills_due())
            or bool(self._outbox)
            or self._reconcile_requested
            or (timeout is None and self._sweep_deadline() is not None)
            or self._admissible()
            or self._should_continue_as_new()
        )

    def _admission_blocked(self) -> bool:
        """No request can be admitted now, whatever the queue holds. The same test gates the
        main loop's wake-up: a wake-up with nothing to do would spin (deadlock detector)."""
        s = self.state
        return (
            s.paused
            or s.next_nonce is None
            or self._lock.locked()  # reconcile / sweep / a balance read is running
            or (self._v2 and self._unknown_holds())
        )

    def _unknown_holds(self) -> bool:
        """An open payment reservation from the old `reserve` update holds funds we cannot
        count (it recorded none): admit nothing new until it is final."""
        return any(
            r.kind is ReservationKind.PAYMENT
            and not r.status.final
            and r.status is not ReservationStatus.ABANDONED
            and r.amount_base_units > 0
            and not r.token_address
            and r.native_value_wei == 0
            and r.gas_budget_wei == 0
            for r in self.state.reservations.values()
        )

    def _admissible(self) -> bool:
        """A queued request could be admitted now (room, not paused, funds not yet refused)."""
        s = self.state
        return (
            bool(s.queue)
            and not self._admission_blocked()
            and s.in_flight() < self.params.tuning.in_flight_limit
            and len(s.funds_waiting) < len(s.queue)
        )

    def _funds_recheck_interval(self) -> float:
        base = self.state.policy.funds_recheck_seconds
        if not self._v2:
            return base
        return self.state.funds_recheck_seconds or base

    def _funds_stale(self) -> bool:
        """Whether payments waiting for funds should see the balances read again."""
        b = self.state.balances
        if b is None or b.read_at is None:
            return True
        return (self._now() - b.read_at).total_seconds() >= self._funds_recheck_interval()

    def _wake_timeout(self) -> timedelta | None:
        deadline = self._sweep_deadline()
        if self._waiting_for_funds():  # re-read the balances now and then (a top-up)
            recheck = self._now() + timedelta(seconds=self._funds_recheck_interval())
            deadline = min(deadline, recheck) if deadline else recheck
        if deadline is None:
            return None
        return max(deadline - self._now(), timedelta(milliseconds=100))

    async def _admission_round(self) -> None:
        if self._admissible() and self._funds_known() and self._balances_stale():
            # Money may have left the wallet outside the engine: look again before granting
            # (at most once per funds_recheck_seconds, never per request).
            async with self._lock:
                await self._read_balances()
        reread = self._admit()
        if reread or (self._waiting_for_funds() and self._funds_stale()):
            async with self._lock:
                await self._read_balances()
            self._admit()  # those already told "insufficient funds" are not told again
            if self._v2:
                # Nobody topped up: look less often (30 s doubling to 15 min), else reset.
                base = self.state.policy.funds_recheck_seconds
                self.state.funds_recheck_seconds = (
                    min(
                        self._funds_recheck_interval() * 2,
                        max(base, self.params.limits.funds_recheck_max_seconds),
                    )
                    if self._waiting_for_funds()
                    else None
                )

    async def _drain(self) -> None:
        """Before continue-as-new: let handlers and locked work finish. Unsent answers are then
        carried in the input (`_carry_answers`); runs before that patch answered everything,
        including what arrived while answering, which under a steady inflow never ended."""
        # Decided at the first drain, not at the run's start: a run started before this
        # patch takes it too, unless its history drained already.
        self._carry_answers = self._v2 and workflow.patched(_PATCH_CARRY_ANSWERS)
        while True:
            await workflow.wait_condition(
                lambda: workflow.all_handlers_finished() and not self._lock.locked()
            )
            if self._carry_answers:
                return
            await self._admission_round()
            await self._start_fills()
            await self._send_answers()
            if not self._v2:
                return
            if (
                not self._outbox
                and not self._fills_due()
                and workflow.all_handlers_finished()
                and not self._lock.locked()
            ):
                return

    @workflow.run
    async def run(self, inp: HotWalletInput) -> None:
        del inp  # taken in __init__
        self._v2 = workflow.patched(_PATCH_V2)
        self._call_back = self._v2 and workflow.patched(_PATCH_CALL_BACK)
        async with self._lock:
            await self._reconcile()  # at creation and at the start of every continued run
        while True:
            timeout = self._wake_timeout()
            try:
                await workflow.wait_condition(
                    lambda t=timeout: self._work_due(t),  # type: ignore[misc]
                    timeout=timeout,
                )
            except TimeoutError:
                sweep = self._sweep_deadline()
                if sweep is not None and sweep <= self._now():
                    async with self._lock:
                        await self._sweep()
            if self._reconcile_requested:
                self._reconcile_requested = False
                async with self._lock:
                    await self._reconcile()
            await self._admission_round()
            await self._start_fills()
            await self._send_answers()
            if self._should_continue_as_new():
                await self._drain()
                # No await from here on: what arrives now is handled in the retried task.
                self.state.answers = [
                    PendingAnswer(payment_workflow_id=wf_id, answer=answer)
                    for wf_id, answer in self._outbox
                ]
                self._prune()
                self.state.runs += 1
                workflow.continue_as_new(
                    HotWalletInput(params=self.params, state=self.state),
                    # The next run starts on the current build (then pinned there).
                    initial_versioning_behavior=workflow.ContinueAsNewVersioningBehavior.AUTO_UPGRADE,
                )
