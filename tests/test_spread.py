"""`bench.spread` bounds a run's ratio of medians by drawing its rounds again."""

import pytest

from bench.spread import ratio_interval


def test_sides_in_a_fixed_proportion_have_no_spread() -> None:
    """Every draw of rounds where one side is always twice the other gives 2."""
    assert ratio_interval([2.0, 4.0, 6.0, 8.0], [1.0, 2.0, 3.0, 4.0]) == (2.0, 2.0)


def test_the_interval_holds_the_runs_own_ratio_and_widens_with_the_noise() -> None:
    """Noisy rounds give an interval around the ratio of medians, wider the noisier, the same each time."""
    ours = [30.0, 24.0, 27.0, 21.0, 33.0, 26.0, 25.0, 29.0]
    theirs = [28.0, 26.0, 25.0, 27.0, 26.0, 24.0, 30.0, 25.0]
    low, high = ratio_interval(ours, theirs)
    assert low < 26.5 / 26.0 < high
    noisier = [value * factor for value, factor in zip(ours, [1.3, 0.7] * 4, strict=True)]
    wider = ratio_interval(noisier, theirs)
    assert wider[1] - wider[0] > high - low
    assert ratio_interval(ours, theirs) == (low, high)


def test_sides_of_different_rounds_are_refused() -> None:
    """The rounds are drawn in pairs, so both sides need each round."""
    with pytest.raises(ValueError, match="same rounds"):
        ratio_interval([1.0, 2.0], [1.0])
