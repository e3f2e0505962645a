"""The main job's environment stays small: the root project's default set (what plain `uv sync`
or `uv run` installs, no groups, no --all-packages) is at most 60 packages, and holds every
distribution the README's main example imports."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.markers import Marker
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
MAIN_EXAMPLE = ROOT / "examples" / "langchain" / "math_example.py"
LIMIT = 60


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path.home() / ".local" / "bin"))
    assert found, "uv must be installed to check the main job's environment (see .ci/run)"
    return found


def _default_set() -> set[str]:
    """Distribution names `uv sync` installs for the root's default set on this platform."""
    out = subprocess.run(
        [
            _uv(),
            "export",
            "--locked",
            "--no-default-groups",
            "--format",
            "requirements-txt",
            "--no-hashes",
            "--no-header",
            "--no-annotate",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "UV_OFFLINE": "1"},
    )
    assert out.returncode == 0, out.stderr
    names: set[str] = set()
    for raw in out.stdout.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-e "):  # a workspace member: its name is in its pyproject
            member = ROOT / line[3:].strip()
            names.add(
                canonicalize_name(
                    tomllib.loads((member / "pyproject.toml").read_text())["project"]["name"]
                )
            )
            continue
        requirement, _, marker = line.partition(";")
        if marker.strip() and not Marker(marker.strip()).evaluate():
            continue  # another platform's dependency (e.g. colorama on Windows)
        names.add(canonicalize_name(re.split(r"[=<>~! \[]", requirement, maxsplit=1)[0]))
    return names


def _top_level_imports(path: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module.split(".")[0])
    return modules


def test_the_main_job_installs_at_most_60_packages() -> None:
    installed = _default_set()
    assert len(installed) <= LIMIT, (
        f"the root's default set pulls {len(installed)} packages (limit {LIMIT}): move what the "
        f"main job does not need into a dependency group. {sorted(installed)}"
    )
    assert {"functionlayer-ai", "functionlayer-langchain"} <= installed
    # Nothing from the other frameworks or the server leaks into it.
    assert not installed & {"crewai", "controlflow", "prefect", "functionlayer-server", "fastapi"}


def test_the_main_job_installs_what_its_example_imports() -> None:
    installed = _default_set()
    imports = _top_level_imports(MAIN_EXAMPLE)
    support = MAIN_EXAMPLE.parent.parent / "_support.py"
    imports |= _top_level_imports(support)
    local = {"_support"}
    owners = {module: list(dists) for module, dists in packages_distributions().items()}
    for pyproject in ROOT.glob("packages/*/pyproject.toml"):  # editable: not in the metadata
        name = tomllib.loads(pyproject.read_text())["project"]["name"]
        for src in (pyproject.parent / "src").iterdir():
            if (src / "__init__.py").exists():
                owners.setdefault(src.name, []).append(name)
    missing: dict[str, list[str]] = {}
    for module in sorted(imports - local - set(sys.stdlib_module_names)):
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        assert dists, f"{module} is imported by the example but installed by no distribution"
        if not dists & installed:
            missing[module] = sorted(dists)
    assert not missing, f"the example imports these, the default set lacks them: {missing}"
    assert "langchain-openai" in installed and "langchain" in installed
