"""Durations written as `"100ms"`, `"30s"`, `"2m"`, `"1h"` or `"1d"` in configuration."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> timedelta:
    """Turn `"30s"` into `timedelta(seconds=30)`; anything else is a `ValueError` that says the form."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 100ms, 30s, 2m, 1h, 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """The shortest `parse_duration` spelling of `value`."""
    millis = round(value.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if millis and millis % size == 0:
            return f"{millis // size}{unit}"
    return f"{millis}ms"
