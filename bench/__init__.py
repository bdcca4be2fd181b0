"""Benchmarks, run on demand (``make bench`` or ``python -m bench NAME --seconds N``).

Each benchmark prints its figures beside a ceiling measured in the same run on the same
machine, and ends with one line ``<name>: <figure> <unit>, ceiling <figure>, ratio <r>``.
Never part of the test run.
"""
