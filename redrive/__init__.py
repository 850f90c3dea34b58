"""redrive core: settings, error taxonomy, retry declarations, job types and the store.

The core imports neither `api`, `workflows` nor `activities`; those build on it.
"""
