"""Start-up cost of enumerating N installed connector plugins.

Builds a throw-away virtual environment with connectors-core, generates N
plugin distributions into it (real ``.dist-info`` metadata, real packages with
a ``provide_connector`` hook implementation, byte-compiled as pip would) plus
N unrelated filler distributions, then times fresh processes, round-robin so
that noise hits every command alike, against ``python -c pass`` measured in
the same run:

* warm ``discover()``: the index is current (every start-up after the first);
* warm ``discover()`` plus building all N Connector objects;
* the first ``discover()`` after installing one more plugin;
* ``discover(use_index=False)``: every plugin imported and validated;
* pluggy's naive loading: ``load_setuptools_entrypoints`` + ``provide_connector``;
* the floors: ``import attrs``, then the manifest classes (frozen attrs classes,
  which every connector object is), then the validation libraries (cattrs and
  pluggy, which the first discovery after an install needs for the changed
  plugin). Each goal's line says how much of its budget its floor takes.

It prints medians and their ratio to the interpreter start, then whether each
goal of issue 16 is met (see GOALS). The machine is shared and noisy: compare
ratios, not milliseconds.

    python benchmarks/startup.py                 # N = 100 and 1000, 11 runs each
    python benchmarks/startup.py --n 200 --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PLUGIN = """\
from connectors_core import hookimpl


@hookimpl
def provide_connector():
    return {manifest!r}
"""

WARM = "import connectors_core as c; r = c.discover(); assert len(r.ids()) >= {n}"
WARM_OBJECTS = "import connectors_core as c; r = c.discover(); assert len(list(r)) >= {n}"
NO_INDEX = "import connectors_core as c; r = c.discover(use_index=False); assert len(r) >= {n}"
NAIVE = """\
import pluggy
from connectors_core import hookspecs
pm = pluggy.PluginManager("connectors_core")
pm.add_hookspecs(hookspecs)
pm.load_setuptools_entrypoints("connectors_core")
assert len(pm.hook.provide_connector()) >= {n}
"""
FLOOR_CLASSES = "import connectors_core._manifest"
FLOOR_VALIDATION = "import connectors_core._manifest, connectors_core._converter, pluggy"
# Issue 16's goals, set for N = 1000 and reported for every N measured:
# (measure, largest ratio to `python -c pass`, label, the floor: what that measure
# imports whatever discovery does, the frozen attrs classes and, after an install,
# the validation libraries).
GOALS = [
    (
        "warm discover() + N objects",
        4.0,
        "warm discover + {n} objects",
        "floor: + the manifest classes",
    ),
    (
        "first discover() after an install",
        5.0,
        "first discover after one install, N = {n}",
        "floor: + validation (cattrs, pluggy)",
    ),
]

PROBE = """\
import json, sys
import connectors_core
light = sorted({m.split(".")[0] for m in sys.modules} & {"attr", "cattrs", "pluggy", "click"})
registry = connectors_core.discover()
plugins = [m for m in sys.modules if m.startswith("bench_plugin_")]
print(json.dumps({"after_import": light, "connectors": len(registry.ids()),
                  "plugin_modules": len(plugins)}))
"""


def manifest(number: int) -> dict[str, object]:
    return {
        "id": f"bench-{number}",
        "name": f"Bench {number}",
        "summary": f"Benchmark connector number {number}.",
        "description": "A generated connector used to measure start-up cost.",
        "category": "custom",
        "status": "available",
        "auth": {"type": "api-key", "description": "The key.", "headerName": "X-Bench-Key"},
        "capabilities": [{"id": "sync", "label": "Sync"}, {"id": "report", "label": "Report"}],
        "tags": ["benchmark"],
        "connection": {"startPath": f"/api/integrations/bench-{number}/connect"},
    }


def write_dist(site: Path, name: str, module: str, source: str, entry_points: str) -> None:
    package = site / module
    package.mkdir()
    (package / "__init__.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(entry_points)
    (info / "INSTALLER").write_text("pip\n")
    (info / "RECORD").write_text(f"{module}/__init__.py,,\n{info.name}/RECORD,,\n")


def write_plugin(site: Path, number: int) -> None:
    module = f"bench_plugin_{number}"
    write_dist(
        site,
        f"bench-plugin-{number}",
        module,
        PLUGIN.format(manifest=manifest(number)),
        f"[connectors_core]\nbench-{number} = {module}\n",
    )


def populate(venv: Path, site: Path, n: int) -> None:
    for old in site.glob("bench_*"):
        shutil.rmtree(old)
    for number in range(n):
        write_plugin(site, number)
        # Unrelated distributions, as any real environment has.
        write_dist(
            site,
            f"bench-filler-{number}",
            f"bench_filler_{number}",
            "VALUE = 1\n",
            f"[console_scripts]\nbench-filler-{number} = bench_filler_{number}:main\n",
        )
    compile_site(venv, site)


def compile_site(venv: Path, site: Path) -> None:
    subprocess.run([venv / "bin" / "python", "-m", "compileall", "-q", site], check=True)


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure(venv: Path, site: Path, n: int, runs: int, env: dict[str, str]) -> None:
    python = str(venv / "bin" / "python")

    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([python, "-c", code], env=env, check=True)
        return time.perf_counter() - start

    extra = iter(range(n, n + runs + 1))

    def after_install() -> float:
        number = next(extra)  # install a new plugin, then time the first discover() after it
        write_plugin(site, number)
        compile_site(venv, site / f"bench_plugin_{number}")
        return run("import connectors_core as c; c.discover()")

    commands = {
        "python -c pass": lambda: run("pass"),
        # What no discovery can avoid: the libraries the manifests are made of.
        "floor: import attrs": lambda: run("import attrs"),
        "floor: + the manifest classes": lambda: run(FLOOR_CLASSES),
        "floor: + validation (cattrs, pluggy)": lambda: run(FLOOR_VALIDATION),
        "warm discover()": lambda: run(WARM.format(n=n)),
        "warm discover() + N objects": lambda: run(WARM_OBJECTS.format(n=n)),
        "first discover() after an install": after_install,
        "discover(use_index=False)": lambda: run(NO_INDEX.format(n=n)),
        "pluggy naive load + provide": lambda: run(NAIVE.format(n=n)),
    }
    run(WARM.format(n=n))  # build the index once
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            samples[name].append(command())
    for number in range(n, n + runs + 1):  # leave exactly N plugins behind
        shutil.rmtree(site / f"bench_plugin_{number}", ignore_errors=True)
        shutil.rmtree(site / f"bench_plugin_{number}-1.0.dist-info", ignore_errors=True)

    base = median_ms(samples["python -c pass"])
    print(f"\nN = {n} plugins (+ {n} filler distributions), {runs} runs each, medians:")
    for name, values in samples.items():
        print(f"  {name:36s} {median_ms(values):8.1f} ms  {median_ms(values) / base:6.2f}x")

    for name, limit, label, floor in GOALS:
        ratio = median_ms(samples[name]) / base
        verdict = "met" if ratio <= limit else "NOT met"
        print(
            f"  goal: {label.format(n=n)} <= {limit:.1f}x python -c pass: {ratio:.1f}x ({verdict})"
        )
        fixed = median_ms(samples[floor]) / base
        print(
            f"        its imports alone ({floor.removeprefix('floor: ')}): {fixed:.1f}x, "
            f"leaving {limit - fixed:.1f}x for discovery and objects "
            f"(they took {ratio - fixed:.1f}x)"
        )

    probe = subprocess.run(
        [python, "-c", PROBE], env=env, check=True, capture_output=True, text=True
    )
    facts = json.loads(probe.stdout)
    print(f"  after `import connectors_core`: heavy modules imported: {facts['after_import']}")
    print(
        f"  after a warm discover(): {facts['connectors']} connectors, "
        f"{facts['plugin_modules']} plugin modules in sys.modules"
    )


def profile(venv: Path, n: int, env: dict[str, str]) -> None:
    """Print where a warm discover() + N objects spends its time (the index is warm)."""
    code = (
        "import cProfile, pstats; "
        "cProfile.run('import connectors_core as c; r = c.discover(); list(r)', 'out'); "
        "pstats.Stats('out').sort_stats('tottime').print_stats(15)"
    )
    with tempfile.TemporaryDirectory() as folder:
        python = str(venv / "bin" / "python")
        subprocess.run([python, "-c", code], env=env, check=True, cwd=folder)
    print(f"(profile above: warm discover() + {n} objects)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--runs", type=int, default=11)
    parser.add_argument("--keep", action="store_true", help="keep the environment")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print a cProfile of the slowest measure (warm discover() + N objects) per N",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="connectors-startup-"))
    try:
        venv = work / "venv"
        print(f"building a virtual environment with connectors-core in {work} ...")
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run(
            [
                venv / "bin" / "python",
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                ROOT,
            ],
            check=True,
        )
        site = Path(
            subprocess.run(
                [
                    venv / "bin" / "python",
                    "-c",
                    "import sysconfig; print(sysconfig.get_path('purelib'))",
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
        )
        env = {key: value for key, value in os.environ.items() if not key.startswith("CONNECTORS_")}
        env["CONNECTORS_INDEX_DIR"] = str(work / "index")
        for n in args.n:
            populate(venv, site, n)
            measure(venv, site, n, args.runs, env)
            if args.profile:
                profile(venv, n, env)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
