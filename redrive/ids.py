"""Time-ordered identifiers: the UUIDv7 layout of RFC 9562 (Python has `uuid.uuid7` only from 3.14).

A job's id is its workflow id, a key of the indexes Temporal's persistence keeps by workflow id, and
the primary key of our `jobs` table. Random ids put every new job on a random page of those B-trees;
ids that begin with their creation time put each on the same few pages as the jobs just before it.
On the dev server that cut the page reads a redrive job costs beyond a bare workflow with the same
traffic from 36-49 to 16-22 a job (`bench.throughput --syscalls`, docs/benchmarks.md). The other 74
bits are random, so ids stay unguessable; an id does tell when it was made, to the millisecond.
"""

from __future__ import annotations

import secrets
import time
import uuid

_VERSION = 0x7 << 76
_VARIANT = 0x2 << 62  # the variant bits 10, as in every RFC 9562 UUID


def uuid7() -> uuid.UUID:
    """A new UUIDv7: 48 bits of Unix time in milliseconds, then 74 random bits."""
    milliseconds = time.time_ns() // 1_000_000
    high, low = secrets.randbits(12), secrets.randbits(62)  # after the version, after the variant
    return uuid.UUID(int=(milliseconds << 80) | _VERSION | (high << 64) | _VARIANT | low)
