"""The one data converter shared by client, worker, replayer and CLI.

The pydantic converter round-trips `Decimal` exactly (as JSON text) and pydantic models; every side
must use it or payloads will not decode. With encryption configured (`OFFRAMP_CODEC_KEYS` or
`OFFRAMP_CODEC_KEYS_FILE`, README "Encrypted payloads") every payload also goes through the
AES-GCM codec, and failure messages and stack traces move into an encoded (so encrypted) attribute:
an error naming an address or amount is as private as the input that caused it.

A BENIGN `ApplicationError` (a poll that found the order unchanged, a payment waiting for its
nonce) is how a wait says "not yet": its failure carries no stack trace, so the Web UI's pending
activity shows the waiting message (retry count, next poll) and no traceback, and the SDK logs it at
DEBUG only.

Build connections with `data_converter()`; `DATA_CONVERTER` is the plain converter (payload
conversion in tests, and what `data_converter()` returns with encryption off: nothing changes then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverter, PayloadConverter
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from offramp.codec import AesGcmCodec, KeyRing, load_key_ring


class WaitingFailureConverter(DefaultFailureConverter):
    """The SDK's failure converter, except that a BENIGN ApplicationError gets no stack trace."""

    def to_failure(
        self, exception: BaseException, payload_converter: PayloadConverter, failure: Failure
    ) -> None:
        if (
            isinstance(exception, ApplicationError)
            and exception.category is ApplicationErrorCategory.BENIGN
        ):
            exception = exception.with_traceback(None)
        super().to_failure(exception, payload_converter, failure)


class EncodedWaitingFailureConverter(WaitingFailureConverter):
    """Also moves message and stack trace into an encoded (so encrypted) attribute."""

    def __init__(self) -> None:
        super().__init__(encode_common_attributes=True)


DATA_CONVERTER: DataConverter = dataclasses.replace(
    pydantic_data_converter, failure_converter_class=WaitingFailureConverter
)


def encrypting_converter(key_ring: KeyRing) -> DataConverter:
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=AesGcmCodec(key_ring),
        failure_converter_class=EncodedWaitingFailureConverter,
    )


def data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The converter for this configuration (`env`, default os.environ); ConfigError if the keys
    are set but invalid."""
    key_ring = load_key_ring(env)
    return DATA_CONVERTER if key_ring is None else encrypting_converter(key_ring)
