"""The one data converter shared by client, worker, replayer and CLI.

The pydantic converter round-trips `Decimal` exactly (as JSON text) and pydantic models; every side
must use it or payloads will not decode. With encryption configured (`OFFRAMP_CODEC_KEYS` or
`OFFRAMP_CODEC_KEYS_FILE`, README "Encrypted payloads") every payload also goes through the
AES-GCM codec, and failure messages and stack traces move into an encoded (so encrypted) attribute:
an error naming an address or amount is as private as the input that caused it.

Build connections with `data_converter()`; `DATA_CONVERTER` is the plain converter (payload
conversion in tests, and what `data_converter()` returns with encryption off: nothing changes then).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from offramp.codec import AesGcmCodec, KeyRing, load_key_ring

DATA_CONVERTER: DataConverter = pydantic_data_converter


def encrypting_converter(key_ring: KeyRing) -> DataConverter:
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=AesGcmCodec(key_ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def data_converter(env: Mapping[str, str] | None = None) -> DataConverter:
    """The converter for this configuration (`env`, default os.environ); ConfigError if the keys
    are set but invalid."""
    key_ring = load_key_ring(env)
    return DATA_CONVERTER if key_ring is None else encrypting_converter(key_ring)
