"""Durations, written one way wherever a person types one (environment, TOML file, CLI):
`"100ms"`, `"30s"`, `"2m"`, `"1h"` or `"1d"`."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> timedelta:
    """Turn `"30s"` into `timedelta(seconds=30)`; anything else is a `ValueError` that says the form."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration; write a number and a unit: 100ms, 30s, 2m, 1h, 1d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])


def _duration(value: Any) -> Any:
    if isinstance(value, timedelta):  # set in code, not typed by a person
        return value
    if not isinstance(value, str):
        raise ValueError('must be a duration string such as "100ms", "30s", "2m"')
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]
"""A `timedelta` field of a pydantic model that reads the one duration format."""
