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


def test_client_benchmark_runs_and_reports_the_ratio_against_its_goal() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "client.py"),
            "--requests",
            "50",
            "--rounds",
            "1",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    assert "bare httpx2.AsyncClient" in result.stdout
    assert "client / bare:" in result.stdout
    assert "(goal <= 1.2x: " in result.stdout
