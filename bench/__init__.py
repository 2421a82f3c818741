"""Benchmarks run as modules (``python -m bench.bus``), outside pytest; they print figures and the machine."""
