"""Engine micro-benchmarks (pytest-benchmark), run by ``make bench-engine``."""
