"""Helpers shared by Satchel's tests (importable because pytest's pythonpath has tests/)."""
