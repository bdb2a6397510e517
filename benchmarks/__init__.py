"""edge_sdk benchmarks: ``make bench`` == ``python -m benchmarks.run``.

Every module ``benchmarks/bench_<name>.py`` defines ``main(argv: list[str]) -> dict | None``:
it parses its own options from ``argv`` (at least ``--quick``, a shorter run for CI / smoke
tests, and ``--json OUT`` when run on its own), prints a plain-text table to stdout and
returns its results as a JSON-serialisable dict.  :mod:`benchmarks.run` runs every such
module in turn, forwarding ``--quick``, and writes all returned dicts, keyed by module
name, to ``--json OUT``.  Report medians of several runs: the machines are shared and noisy.
"""
