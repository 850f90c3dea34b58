"""Optional encryption of everything redrive puts in Temporal's history: with `REDRIVE_PAYLOAD_KEY`
set, payloads (job input, stage outputs, activity arguments) and failure messages are sealed with
AES-256-GCM before they leave the process, so the server and its database hold ciphertext only.

The key is 32 bytes in URL-safe base64; `new_key()` makes one:
`python -c "from redrive.codec import new_key; print(new_key())"`.
Every client, worker and API process must use the same key; the API's `/codec` endpoints let the
Temporal Web UI show decoded payloads to people holding an API key.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from redrive.converter import DATA_CONVERTER

ENCODING = b"binary/encrypted"
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """`REDRIVE_PAYLOAD_KEY` is not 32 bytes of URL-safe base64."""


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload; the key's id travels in the metadata."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)
        self.key_id = hashlib.sha256(key).hexdigest()[:16].encode()

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Seal each payload."""
        return [self._seal(payload) for payload in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Open each sealed payload; pass others through (histories written before the key was set)."""
        return [
            self._open(payload) if payload.metadata.get("encoding") == ENCODING else payload
            for payload in payloads
        ]

    def _seal(self, payload: Payload) -> Payload:
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, payload.SerializeToString(), self.key_id)
        return Payload(metadata={"encoding": ENCODING, "encryption-key-id": self.key_id}, data=nonce + sealed)

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encryption-key-id") != self.key_id:
            raise ValueError("payload was sealed with another REDRIVE_PAYLOAD_KEY")
        try:
            plain = self._aead.decrypt(payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:], self.key_id)
        except InvalidTag:
            raise ValueError("payload does not decrypt with this REDRIVE_PAYLOAD_KEY (tampered?)") from None
        opened = Payload()
        opened.ParseFromString(plain)
        return opened


def new_key() -> str:
    """A fresh random key for `REDRIVE_PAYLOAD_KEY`."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_key(value: str) -> bytes:
    """The 32-byte key in `value`; `PayloadKeyError` saying what is wrong."""
    try:
        key = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise PayloadKeyError("REDRIVE_PAYLOAD_KEY must be URL-safe base64") from None
    if len(key) != 32:
        raise PayloadKeyError(f"REDRIVE_PAYLOAD_KEY must decode to 32 bytes, not {len(key)}")
    return key


def data_converter(payload_key: str) -> DataConverter:
    """Pydantic payloads, sealed (with failure messages too) when `payload_key` is set."""
    if not payload_key:
        return DATA_CONVERTER
    return dataclasses.replace(
        DATA_CONVERTER,
        payload_codec=EncryptionCodec(parse_key(payload_key)),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
