"""Benchmarks: each measures Satchel against its baselines in the same run."""
