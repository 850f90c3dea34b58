"""How far a run's ratio of medians could move with other rounds: a bootstrap over the rounds.

A round's ratio between two sides moves by ±20 % on a shared machine, so the median of eight rounds
still moves by several percent from run to run. Drawing the rounds again with replacement, each
round's two sides together (they ran next to each other), and taking the ratio of the medians of
each draw, gives the interval within which most runs' ratios would fall.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence

DRAWS = 2000


def ratio_interval(
    ours: Sequence[float], theirs: Sequence[float], level: float = 0.9, seed: int = 0
) -> tuple[float, float]:
    """The central `level` interval of median(ours) / median(theirs) over rounds drawn again in
    pairs; seeded, so a run prints the same interval for the same figures."""
    if len(ours) != len(theirs) or not ours:
        raise ValueError("the two sides need the same rounds, at least one")
    draw = random.Random(seed)
    rounds = range(len(ours))
    ratios = sorted(
        statistics.median(ours[i] for i in picked) / statistics.median(theirs[i] for i in picked)
        for picked in ([draw.choice(rounds) for _ in rounds] for _ in range(DRAWS))
    )
    tail = (1 - level) / 2
    return ratios[int(tail * (DRAWS - 1))], ratios[int((1 - tail) * (DRAWS - 1))]
