"""Benchmarks, examples and tools run as scripts (scripts/bench.py imports its siblings)."""
