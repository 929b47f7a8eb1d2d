"""Benchmarks: seeded data generator, load generator, baselines and reports."""
