"""API keys: `rdk_<id>_<secret>`. The id is public (it names the key in logs and action records);
only SHA-256 of the secret is stored, which is enough for 256-bit random secrets (no slow hash
needed: there is nothing to brute-force)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from redrive.settings import KNOWN_SCOPES
from redrive.store.models import ApiKey

PREFIX = "rdk"
SCOPES = KNOWN_SCOPES


@dataclass(frozen=True)
class IssuedKey:
    """A new key: `token` is shown once and never stored."""

    key: ApiKey
    token: str


def digest(secret: str) -> str:
    """What is stored for `secret`."""
    return hashlib.sha256(secret.encode()).hexdigest()


def check_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """`scopes` without repeats, in canonical order; `ValueError` naming an unknown one."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise ValueError(f"scopes must be some of {', '.join(SCOPES)}; got {', '.join(scopes) or 'none'}")
    return tuple(scope for scope in SCOPES if scope in scopes)


class ApiKeyRepository:
    """API keys within the caller's session; the caller commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(self, tenant_id: str, name: str, scopes: Sequence[str], at: datetime) -> IssuedKey:
        """A new key for `tenant_id` with `scopes`."""
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        key = ApiKey(
            id=key_id,
            tenant_id=tenant_id,
            name=name,
            scopes=",".join(check_scopes(scopes)),
            secret_hash=digest(secret),
            created_at=at,
        )
        self.session.add(key)
        return IssuedKey(key=key, token=f"{PREFIX}_{key_id}_{secret}")

    async def authenticate(self, token: str) -> ApiKey | None:
        """The live key `token` is, or None."""
        prefix, _, rest = token.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not key_id or not secret:
            return None
        key = await self.session.get(ApiKey, key_id)
        if key is None or key.revoked_at is not None:
            return None
        return key if hmac.compare_digest(key.secret_hash, digest(secret)) else None

    async def list(self) -> list[ApiKey]:
        """Every key, newest first."""
        query = select(ApiKey).order_by(col(ApiKey.created_at).desc())
        return list((await self.session.exec(query)).all())

    async def revoke(self, key_id: str, at: datetime) -> bool:
        """Revoke the key; False when there is no live key with that id."""
        result = await self.session.exec(
            sa.update(ApiKey)
            .where(col(ApiKey.id) == key_id, col(ApiKey.revoked_at).is_(None))
            .values(revoked_at=at)
        )
        return bool(getattr(result, "rowcount", 0))
