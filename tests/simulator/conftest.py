"""A depositor for the simulator's chain tests: a fresh account of its own (not the hot wallet, so
the payment tests' nonces are never disturbed), funded with ETH and the test token."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.types import TxParams, TxReceipt, Wei

from offramp.devstack.chain import LocalChain, mint, token_artifact, token_contract, web3_for

DEPOSITOR_TOKENS = 1_000_000 * 10**6


@dataclass
class Depositor:
    w3: Web3
    account: LocalAccount
    token: str

    @property
    def address(self) -> str:
        return str(self.account.address)

    def _send(self, tx: TxParams) -> TxReceipt:
        tx = {
            **tx,
            "from": self.account.address,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "maxFeePerGas": Wei(self.w3.eth.gas_price * 2 + 10**9),
            "maxPriorityFeePerGas": Wei(10**9),
        }
        tx.setdefault("gas", self.w3.eth.estimate_gas(tx))
        signed = self.account.sign_transaction(tx)  # type: ignore[arg-type]
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=30, poll_latency=0.05)
        assert receipt["status"] == 1, f"deposit reverted: {tx_hash.to_0x_hex()}"
        return receipt

    def send_token(self, to: str, amount: int, token: str | None = None) -> TxReceipt:
        call = token_contract(self.w3, token or self.token).functions.transfer(
            Web3.to_checksum_address(to), amount
        )
        return self._send(
            {
                "to": Web3.to_checksum_address(token or self.token),
                "data": call._encode_transaction_data(),
                "value": Wei(0),
            }
        )

    def send_native(self, to: str, amount_wei: int) -> TxReceipt:
        return self._send({"to": Web3.to_checksum_address(to), "value": Wei(amount_wei)})

    def deploy_other_token(self) -> str:
        """A second ERC-20 (same artifact, another address): the "wrong token"."""
        receipt = self._send({"data": token_artifact()["bytecode"], "value": Wei(0)})
        address = receipt["contractAddress"]
        assert address is not None
        call = token_contract(self.w3, address).functions.mint(self.account.address, 10**12)
        self._send({"to": address, "data": call._encode_transaction_data(), "value": Wei(0)})
        return str(address)


@pytest.fixture(scope="session")
def depositor(local_chain: LocalChain) -> Depositor:
    w3 = web3_for(local_chain.rpc_url)
    account: LocalAccount = Account.create()
    w3.provider.make_request("anvil_setBalance", [account.address, hex(10**21)])  # type: ignore[arg-type]
    mint(w3, local_chain.token_address, account.address, DEPOSITOR_TOKENS)
    return Depositor(w3, account, local_chain.token_address)
