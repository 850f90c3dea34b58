"""The payload converter: pydantic JSON, with one TypeAdapter per type for the whole process.

The SDK builds a new payload converter for every workflow run (inside the sandbox), and the stock
pydantic converter caches its TypeAdapters per converter instance, so every run built the schema
of `JobInput` and `StageResult` again: measured as a tenth of the worker's CPU per job. This module
is passed through the sandbox, so its cache outlives the runs; the JSON on the wire is unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

TYPE_ADAPTERS = functools.lru_cache(maxsize=1024)(TypeAdapter)


class SharedAdapterJSONConverter(PydanticJSONPlainPayloadConverter):
    """`PydanticJSONPlainPayloadConverter` whose TypeAdapter cache is the process's."""

    def __init__(self) -> None:
        super().__init__()
        self._type_adapter: Any = TYPE_ADAPTERS


_JSON = SharedAdapterJSONConverter()


class PayloadConverter(CompositePayloadConverter):
    """`PydanticPayloadConverter`'s encodings, with the process-wide TypeAdapter cache."""

    def __init__(self) -> None:
        super().__init__(
            *(
                _JSON if isinstance(converter, JSONPlainPayloadConverter) else converter
                for converter in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


DATA_CONVERTER = DataConverter(payload_converter_class=PayloadConverter)
"""Pydantic payloads (models, dataclasses, datetimes, ...) as JSON."""
