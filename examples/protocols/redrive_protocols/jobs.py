"""The `protocol` job type, declared with redrive's public API and registered through the
`redrive.job_types` entry point (see pyproject.toml)."""

from __future__ import annotations

import asyncio
import re
from datetime import timedelta
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from rapidfuzz import fuzz, process

from redrive import JobType, Stage, StageContext
from redrive_protocols.documents import pdf_text, read_bytes

MATCH_SCORE = 85


class ProtocolDocument(BaseModel):
    """Where the protocol's PDF is."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, examples=["file:///srv/protocols/protocol-7.pdf"])


async def extract(context: StageContext) -> dict[str, Any]:
    """Fetch the PDF and extract its text."""
    document = ProtocolDocument.model_validate(context.payload)
    data = await asyncio.to_thread(read_bytes, document.url)
    text = await asyncio.to_thread(pdf_text, data, document.url)
    context.logger.info("extracted %d characters", len(text))
    return {"characters": len(text), "text": text}


async def ground(context: StageContext) -> dict[str, Any]:
    """Match the extracted text's words and phrases against the vocabulary."""
    text: str = context.outputs["extract"]["text"].lower()
    words = re.findall(r"[a-z]+", text)
    phrases = set(words) | {" ".join(words[i : i + n]) for n in (2, 3) for i in range(len(words) - n + 1)}
    found = {
        term
        for term in vocabulary()
        if process.extractOne(term, phrases, scorer=fuzz.ratio, score_cutoff=MATCH_SCORE) is not None
    }
    return {"terms": sorted(found)}


def vocabulary() -> list[str]:
    """The terms shipped with the example, one a line."""
    lines = (resources.files("redrive_protocols") / "vocabulary.txt").read_text().splitlines()
    return [line.strip().lower() for line in lines if line.strip() and not line.startswith("#")]


PROTOCOL = JobType(
    name="protocol",
    description="Extract a study protocol's text from its PDF, ground its terms, then a person reviews it.",
    stages=[
        Stage(name="extract", handler=extract, start_to_close_timeout=timedelta(minutes=2)),
        Stage(name="ground", handler=ground),
        Stage(name="review", kind="review", activity="review", review_timeout=timedelta(days=7)),
    ],
    payload_model=ProtocolDocument,
    labels={
        "queued": "uploaded",
        "running:extract": "extracting",
        "retrying:extract": "extraction_failed",
        "running:ground": "grounding",
        "retrying:ground": "grounding_failed",
    },
)
"""Retries as seeded: 30 s, ×4, 3 retries, 0–25 % jitter (the default `Retry()`)."""

JOB_TYPES = [PROTOCOL]
SAMPLES = resources.files("redrive_protocols") / "samples"
"""`protocol-good.pdf`, `protocol-broken.pdf` (cut off) and `protocol-notes.txt` (not a PDF)."""

__all__ = ["JOB_TYPES", "PROTOCOL", "SAMPLES"]
