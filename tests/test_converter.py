"""The payload converter shares one TypeAdapter per type across converter instances (the SDK makes
one per workflow run) and writes the same JSON as the stock pydantic converter."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.contrib.pydantic import PydanticPayloadConverter

from redrive.contracts import JobInput, StageResult
from redrive.converter import TYPE_ADAPTERS, PayloadConverter
from redrive.jobtypes import load_job_types


def _job() -> JobInput:
    demo = load_job_types().get("demo")
    return JobInput(job_id="job-1", tenant_id="t", job_type="demo", payload={"n": 1}, stages=demo.plan())


def test_payloads_match_the_stock_pydantic_converter() -> None:
    """Same bytes out, same values back: histories written either way read the same."""
    ours, stock = PayloadConverter(), PydanticPayloadConverter()
    values = [_job(), StageResult(output={"ok": True})]
    written = ours.to_payloads(values)
    assert written == stock.to_payloads(values)
    assert ours.from_payloads(written, [JobInput, StageResult]) == values
    assert stock.from_payloads(written, [JobInput, StageResult]) == values


def test_type_adapters_outlive_the_converter() -> None:
    """A second converter (as for the next workflow run) reuses the first one's TypeAdapter."""

    @dataclass(frozen=True)
    class Fresh:  # a type no other test has converted
        value: int

    first, second = PayloadConverter(), PayloadConverter()
    payload = first.to_payloads([Fresh(1)])
    before = TYPE_ADAPTERS.cache_info()
    assert first.from_payloads(payload, [Fresh]) == [Fresh(1)]
    built = TYPE_ADAPTERS.cache_info()
    assert second.from_payloads(payload, [Fresh]) == [Fresh(1)]
    after = TYPE_ADAPTERS.cache_info()
    assert (built.misses - before.misses, after.misses - built.misses) == (1, 0)
    assert after.hits == built.hits + 1
