"""The baseline's workflows, one module each (see `bench.bare`); modules are written as
`workflows/job.py` is (no postponed annotations, activities passed through the sandbox)."""
