"""The one data converter shared by client, worker and replayer.

The pydantic converter round-trips `Decimal` exactly (as JSON text) and pydantic models; all three
sides must use it or payloads will not decode.
"""

from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

DATA_CONVERTER: DataConverter = pydantic_data_converter
