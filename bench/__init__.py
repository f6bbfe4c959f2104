"""Speed and memory benchmarks (`make bench`); the figures go in the closing notes, not tests."""
