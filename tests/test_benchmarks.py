"""The benchmark scripts keep working (their numbers are read by people, not tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.environments import ROOT

pytestmark = pytest.mark.slow


def test_startup_benchmark_runs_and_reports_every_measure() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "startup.py"), "--n", "3", "--runs", "1"],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    for label in (
        "python -c pass",
        "warm discover()",
        "first discover() after an install",
        "discover(use_index=False)",
        "pluggy naive load + provide",
    ):
        assert label in result.stdout
    assert "heavy modules imported: []" in result.stdout
    assert "3 connectors, 0 plugin modules in sys.modules" in result.stdout
