"""The benchmark scripts keep working (their numbers are read by people, not tests)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.environments import ROOT
from tests.postgres import SERVER

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
        "floor: import attrs",
        "floor: + the manifest classes",
        "floor: + validation (cattrs, pluggy)",
    ):
        assert label in result.stdout
    assert "heavy modules imported: []" in result.stdout
    assert "3 connectors, 0 plugin modules in sys.modules" in result.stdout
    for goal in (
        "goal: warm discover + 3 objects <= 4.0x python -c pass: ",
        "goal: first discover after one install, N = 3 <= 5.0x python -c pass: ",
    ):
        lines = result.stdout.splitlines()
        (at,) = [number for number, line in enumerate(lines) if goal in line]
        assert lines[at].endswith(("x (met)", "x (NOT met)")), lines[at]
        assert lines[at + 1].strip().startswith("its imports alone ("), lines[at + 1]


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


def test_events_benchmark_loses_nothing_and_duplicates_only_across_a_replica_kill(
    postgres_url: str,  # skips without a PostgreSQL server (fails under CI)
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "events.py"),
            *("--events", "600", "--connections", "60", "--rounds", "1", "--hold", "3"),
            *("--postgres-url", SERVER, "--no-goal-check"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    rounds = [line for line in result.stdout.splitlines() if line.startswith("  round ")]
    assert len(rounds) == 3, result.stdout  # 2 replicas, 1 replica, 2 with one killed
    assert all("| lost 0, " in line and ", bad 0 |" in line for line in rounds), result.stdout
    assert ", one killed: " in rounds[-1]
    assert "kill round: lost 0, " in result.stdout
    assert "other duplicates 0, out of order 0;" in result.stdout
    assert "events/s with 2 replicas:" in result.stdout
    assert "all checks passed" in result.stdout
