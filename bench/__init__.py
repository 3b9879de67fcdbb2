"""Benchmarks with their baselines, run by one command: ``python -m bench``.

Kept apart from ``tests/`` and never part of the test run. Every figure is a ratio against a
baseline measured in the same run on the same machine, the median of several runs that
alternate our server and the baseline, so noise hits both. All load targets 127.0.0.1 only and
every loop is bounded in count and in time. See docs/benchmarks.md.
"""
