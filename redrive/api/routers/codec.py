"""`/codec`: the Temporal Web UI's remote codec. With `REDRIVE_PAYLOAD_KEY` set, history payloads are
ciphertext; pointing the UI's codec endpoint here (Settings → Data Encoder) shows them decoded to a
person with a `read` key. CORS admits the UI's origin (`REDRIVE_UI_URL`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from redrive.api.deps import ReadDep, StateDep
from redrive.api.problems import Problem
from redrive.schemas import PROBLEMS

router = APIRouter(prefix="/codec", tags=["codec"], responses=PROBLEMS)


class CodecPayloads(BaseModel):
    """Payloads in Temporal's JSON form: base64 `data`, base64 `metadata` values."""

    model_config = ConfigDict(extra="allow")

    payloads: list[dict[str, Any]] = Field(
        max_length=1000, examples=[[{"metadata": {"encoding": "..."}, "data": "..."}]]
    )


@router.post("/decode", summary="Decode payloads for the Temporal UI")
async def decode(body: CodecPayloads, state: StateDep, _caller: ReadDep) -> CodecPayloads:
    """Open sealed payloads; others come back as they were."""
    codec = _codec(state.codec)
    return CodecPayloads(payloads=_to_json(await codec.decode(_from_json(body))))


@router.post("/encode", summary="Encode payloads for the Temporal UI")
async def encode(body: CodecPayloads, state: StateDep, _caller: ReadDep) -> CodecPayloads:
    """Seal payloads (the UI uses this to send signals and updates with encrypted arguments)."""
    codec = _codec(state.codec)
    return CodecPayloads(payloads=_to_json(await codec.encode(_from_json(body))))


def _codec(codec: PayloadCodec | None) -> PayloadCodec:
    if codec is None:
        raise Problem(404, "Codec off", "REDRIVE_PAYLOAD_KEY is not set: payloads are stored unencrypted")
    return codec


def _from_json(body: CodecPayloads) -> list[Payload]:
    try:
        return [json_format.ParseDict(item, Payload()) for item in body.payloads]
    except json_format.ParseError as error:
        raise Problem(422, "Invalid payload", f"body.payloads: {error}", field="body.payloads") from None


def _to_json(payloads: list[Payload]) -> list[dict[str, Any]]:
    return [json_format.MessageToDict(payload) for payload in payloads]
