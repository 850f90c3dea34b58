"""The built-in job types' stage handlers (samples of what a team writes in its own package)."""
