"""Benchmarks: run with `python -m bench.<name>`; they print medians and ratios, never assert."""
