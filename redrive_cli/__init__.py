"""The composition root: the `redrive` command (`python -m redrive_cli`), which wires the core, the API
and the worker together. Nothing in those layers imports this package."""
