"""A billing team's job types, declared with redrive's public API only."""
