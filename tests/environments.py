"""Real wheels and throw-away virtual environments, for the slow end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail the test with its output if it fails."""
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


def build_wheels(out: Path, *projects: Path) -> None:
    """Build wheels of ``projects`` into ``out`` with this environment's hatchling."""
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--quiet",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        "--wheel-dir",
        out,
        *projects,
    )


def write_project(
    folder: Path, name: str, version: str, module: str, source: str, entry_points: dict[str, str]
) -> Path:
    """Write a pip-installable plugin project (hatchling) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = "".join(f'{key} = "{value}"\n' for key, value in entry_points.items())
    (folder / "pyproject.toml").write_text(
        textwrap.dedent(f"""\
        [build-system]
        requires = ["hatchling"]
        build-backend = "hatchling.build"

        [project]
        name = "{name}"
        version = "{version}"
        dependencies = ["connectors-core"]

        [tool.hatch.build.targets.wheel]
        packages = ["{module}"]

        [project.entry-points.connectors_core]
        """)
        + lines
    )
    (folder / module).mkdir(exist_ok=True)
    (folder / module / "__init__.py").write_text(textwrap.dedent(source).lstrip())
    return folder


class Venv:
    """A virtual environment with connectors-core (and Evencio) installed from wheels."""

    def __init__(self, path: Path, wheels: Sequence[Path], extra: Sequence[str] = ()) -> None:
        self.path = path
        run(sys.executable, "-m", "venv", path)
        self.pip("install", *wheels, *extra)

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def bin(self, name: str) -> Path:
        return self.path / "bin" / name

    def pip(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        return run(self.python, "-m", "pip", "--disable-pip-version-check", "--quiet", *args)
