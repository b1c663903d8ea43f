"""Fuzzing support: hostile-input builders (``build``) and the checks every input must pass (``targets``).

Used by tests/fuzz (hypothesis, bounded in CI) and scripts/fuzz_atheris.py (coverage-guided, local).
Imports nothing from Textual or Rich.
"""
