"""Core costs, measured side by side in one run.

1. Import: ``import functionlayer`` against a bare interpreter and against pydantic itself
   (``import pydantic`` and ``from pydantic import BaseModel``, which the core needs), each in
   fresh interpreters, median of N runs. Target: the core adds at most 25 ms and 40 modules on
   top of pydantic, and imports no HTTP client.
2. The guarded call's auto-run path (``when=`` false) against a plain call. Target: < 20 µs.

Run: ``uv run python bench/core_overhead.py [--runs 15]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import timeit

PROBE = """
import sys, time
before = set(sys.modules)
t = time.perf_counter()
exec({stmt!r})
elapsed = time.perf_counter() - t
heavy = sorted(m for m in ("httpx", "requests", "asyncio", "aiohttp") if m in sys.modules)
print(elapsed, len(set(sys.modules) - before), ",".join(heavy))
"""

# The first pydantic model defined in a process imports pydantic.fields and pydantic.types (~50 ms
# here): a cost of pydantic itself that any package with a model pays, hence the third baseline.
ONE_MODEL = (
    "from pydantic import BaseModel, ConfigDict\n"
    "class M(BaseModel):\n    model_config = ConfigDict(defer_build=True)\n    x: int = 0"
)
CASES = {
    "bare interpreter": "pass",
    "import pydantic": "import pydantic",
    "from pydantic import BaseModel": "from pydantic import BaseModel",
    "pydantic + one (deferred) model": ONE_MODEL,
    "import functionlayer": "import functionlayer",
}


def measure_imports(runs: int) -> dict[str, tuple[float, int, str]]:
    # Measure imports as users get them: from bytecode caches. (Some machines set
    # PYTHONDONTWRITEBYTECODE, which makes every interpreter recompile every module.)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    results: dict[str, list[tuple[float, int, str]]] = {name: [] for name in CASES}
    for warm_up in [True] + [False] * runs:
        for name, stmt in CASES.items():  # interleaved, so machine noise hits every case alike
            out = subprocess.run(
                [sys.executable, "-c", PROBE.format(stmt=stmt)],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.split(" ")
            if warm_up:  # writes the bytecode caches
                continue
            results[name].append((float(out[0]), int(out[1]), out[2].strip()))
    return {
        name: (statistics.median(r[0] for r in rows), rows[0][1], rows[0][2])
        for name, rows in results.items()
    }


def measure_calls() -> tuple[float, float]:
    from functionlayer import FunctionLayer
    from functionlayer.testing import ScriptedHuman

    fl = FunctionLayer(backend=ScriptedHuman([]))

    def plain(x: int, y: int) -> int:
        return x * y

    guarded = fl.require_approval(when=lambda x, y: x > 1_000_000)(plain)
    assert guarded(2, 5) == 10

    number = 200_000
    plain_s = min(timeit.repeat(lambda: plain(2, 5), number=number, repeat=5)) / number
    guarded_s = min(timeit.repeat(lambda: guarded(2, 5), number=number, repeat=5)) / number
    return plain_s, guarded_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    imports = measure_imports(args.runs)
    print(
        f"Import cost (median of {args.runs} fresh interpreters, Python {sys.version.split()[0]})"
    )
    print(f"  {'case':34s} {'time':>9s} {'modules':>8s}  heavy modules loaded")
    for name, (seconds, modules, heavy) in imports.items():
        print(f"  {name:34s} {seconds * 1000:7.1f} ms {modules:8d}  {heavy or '-'}")
    core_t, core_m, _ = imports["import functionlayer"]
    for base in (
        "import pydantic",
        "from pydantic import BaseModel",
        "pydantic + one (deferred) model",
    ):
        base_t, base_m, _ = imports[base]
        print(
            f"  functionlayer on top of `{base}`: +{(core_t - base_t) * 1000:.1f} ms, "
            f"+{core_m - base_m} modules (target: <= 25 ms, <= 40 modules), "
            f"ratio {core_t / base_t:.2f}x"
        )

    plain_s, guarded_s = measure_calls()
    print("Guarded call, auto-run path (when= false), best of 5 x 200k calls")
    print(f"  plain call        {plain_s * 1e6:7.3f} µs")
    print(f"  guarded call      {guarded_s * 1e6:7.3f} µs")
    print(
        f"  overhead          {(guarded_s - plain_s) * 1e6:7.3f} µs per call (target < 20 µs), "
        f"ratio {guarded_s / plain_s:.1f}x"
    )


if __name__ == "__main__":
    main()
