"""Every package says its version: ``__version__`` equals the installed metadata and the
package's pyproject (0.4.0 for the whole workspace)."""

from __future__ import annotations

import importlib
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECTS = sorted(ROOT.glob("packages/*/pyproject.toml"))


@pytest.mark.parametrize("pyproject", PYPROJECTS, ids=[p.parent.name for p in PYPROJECTS])
def test_dunder_version_matches_the_metadata(pyproject: Path) -> None:
    project = tomllib.loads(pyproject.read_text())["project"]
    (module,) = [
        p.name for p in (pyproject.parent / "src").iterdir() if (p / "__init__.py").exists()
    ]
    imported = importlib.import_module(module)
    assert imported.__version__ == project["version"] == version(project["name"]) == "0.4.0"
    assert "__version__" in imported.__all__
