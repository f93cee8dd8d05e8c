"""Benchmarks (`make bench`): one module per target of DESIGN.md §12."""
