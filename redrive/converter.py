"""The payload converter: pydantic JSON, with one TypeAdapter per type for the whole process.

The SDK builds a new payload converter for every workflow run (inside the sandbox), and the stock
pydantic converter caches its TypeAdapters per converter instance, so every run built the schema
of `JobInput` and `StageResult` again: measured as a tenth of the worker's CPU per job. This module
is passed through the sandbox, so its cache outlives the runs; the JSON on the wire is unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

import temporalio.api.common.v1
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
    """`PydanticJSONPlainPayloadConverter` that reads payloads through the process's TypeAdapters."""

    def from_payload(self, payload: temporalio.api.common.v1.Payload, type_hint: type | None = None) -> Any:
        """The value `payload` holds, as `type_hint` (any JSON value without one)."""
        hint: Any = type_hint if type_hint is not None else Any
        try:
            adapter: TypeAdapter[Any] = TYPE_ADAPTERS(hint)
        except TypeError:
            try:
                hash(hint)
            except TypeError:  # an unhashable hint cannot be cached: build its adapter each time
                adapter = TypeAdapter(hint)
            else:
                raise
        return adapter.validate_json(payload.data)


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
