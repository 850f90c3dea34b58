"""The README's table of settings names every setting the code reads, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from redrive.settings import AlertSettings, Settings

README = Path(__file__).parent.parent / "README.md"


def test_every_setting_is_in_the_readme_table() -> None:
    """A field added to Settings (or AlertSettings) without a row in "Every setting" fails here."""
    section = README.read_text().split("## Every setting", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `(REDRIVE_[A-Z_]+)` \|", section, re.M))
    fields = [name for name in Settings.model_fields if name != "alerts"] + list(AlertSettings.model_fields)
    assert documented == {f"REDRIVE_{name.upper()}" for name in fields}
