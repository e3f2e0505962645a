"""The core's public seam: every other distribution uses only public names of ``functionlayer``.

The server and the adapters import what they need from ``functionlayer``,
``functionlayer.models``, ``functionlayer.display`` and ``functionlayer.adapters`` (and
``functionlayer.testing`` in tests), never from the core's ``_`` modules, which may change
between releases. Inside the core, a module uses another module's public names only.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "packages"
CORE = PACKAGES / "core" / "src"
PUBLIC = [
    "functionlayer",
    "functionlayer.models",
    "functionlayer.display",
    "functionlayer.adapters",
]


def _sources(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts)


def _other_distributions() -> list[Path]:
    return [
        path
        for package in sorted(PACKAGES.iterdir())
        if package.name != "core" and (package / "src").is_dir()
        for path in _sources(package / "src")
    ]


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_other_distributions_import_no_private_core_module() -> None:
    # The check the issue states: grep -rn "from functionlayer\._" packages/*/src | grep -v core
    pattern = re.compile(r"from functionlayer\._|import functionlayer\._")
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _other_distributions()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == [], "\n".join(found)


def test_other_distributions_use_no_private_core_name() -> None:
    # Also `from functionlayer import _native` and `from functionlayer.testing import _human`.
    found: list[str] = []
    for path in _other_distributions():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                parts = node.module.split(".")
                if parts[0] != "functionlayer":
                    continue
                names = [*parts[1:], *(alias.name for alias in node.names)]
                if any(_is_private(name) for name in names):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: from {node.module}")
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    parts = alias.name.split(".")
                    if parts[0] == "functionlayer" and any(_is_private(p) for p in parts):
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}")
    assert found == [], "\n".join(found)


def _is_module(package: str, name: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except ModuleNotFoundError:
        return False


def test_core_modules_import_no_private_name_of_another_module() -> None:
    # A helper one module needs from another has a public name there (``_ids.new_id``), so
    # no module reaches into another's ``_private`` functions. Private modules are fine.
    found = []
    for path in _sources(CORE):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.ImportFrom) and node.level == 0 and node.module):
                continue
            if node.module.split(".")[0] != "functionlayer":
                continue
            for alias in node.names:
                if _is_private(alias.name) and not _is_module(node.module, alias.name):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {alias.name}")
    assert found == [], "\n".join(found)


def test_core_modules_hide_no_import_inside_a_function() -> None:
    # Function-level imports of another core module once hid an import cycle (_native reached
    # into _client); deferred imports are kept only for import cost (listed here).
    deferred_for_cost = {"_backends._http", "_backends._terminal", "_execution", "_tools"}
    found = []
    for path in _sources(CORE / "functionlayer"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.ImportFrom) and node.module:
                    module = node.module.removeprefix("functionlayer.")
                    private = node.module.startswith("functionlayer.") and module.startswith("_")
                    if private and module not in deferred_for_cost:
                        found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.module}")
    assert found == [], "\n".join(found)


@pytest.mark.parametrize("module", PUBLIC)
def test_every_public_name_resolves(module: str) -> None:
    imported = importlib.import_module(module)
    names = list(imported.__all__)
    assert names, module
    assert len(names) == len(set(names)), f"{module}.__all__ repeats a name"
    missing = [name for name in names if not hasattr(imported, name)]
    assert missing == [], f"{module} does not define {missing}"
    assert not [name for name in names if _is_private(name)], module


def test_the_seam_covers_what_the_other_distributions_use() -> None:
    # Every name another distribution imports from the core is in a public __all__.
    public = {name for module in PUBLIC for name in importlib.import_module(module).__all__}
    public |= {"__version__", "testing"}
    used: set[str] = set()
    for path in _other_distributions():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module in PUBLIC:
                used |= {alias.name for alias in node.names} - set(PUBLIC)
    used.discard("adapters")  # `from functionlayer import adapters`: the module itself
    assert used - public == set()


def test_importing_functionlayer_loads_neither_the_seam_nor_pytest() -> None:
    # The conformance suite (functionlayer.testing.conformance) needs pytest; nothing else does.
    code = (
        "import sys, functionlayer, functionlayer.testing\n"
        "heavy = ['pytest', 'functionlayer.adapters', "
        "'functionlayer.testing.conformance', 'functionlayer._tools', 'httpx']\n"
        "print([name for name in heavy if name in sys.modules])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
