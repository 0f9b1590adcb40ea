"""Benchmarks that drive the real server; run them as ``python -m bench.<name>``."""
