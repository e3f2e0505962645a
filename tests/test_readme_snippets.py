"""Every snippet of the READMEs runs as written, the way a new user would try it.

- Every ```python block of README.md, packages/*/README.md and docs/*.md runs in a fresh
  interpreter (this venv), in an empty temporary directory, offline: ``OPENAI_BASE_URL`` points
  at FunctionLayer's scripted model (the math script), the human at the terminal answers ``y``
  on stdin. It must exit 0. A block whose first line is ``# fragment of <file>`` is part of a
  runnable file of this repository instead: each of its code lines must appear in that file.
- Every ``uv run ... python examples/...`` command in a ```bash block runs from a fresh clone
  (``git clone`` of this repository's HEAD), through ``uv run --no-sync`` on this venv.
- Every ``uv run ... python examples/...`` command anywhere in the READMEs (blocks and inline)
  and in the examples' docstrings installs what its example imports: ``uv export`` with the same options, from the lock, lists a
  distribution for each module the example imports. A command that would fail with
  ModuleNotFoundError on a fresh machine is caught without installing anything.

The snippets run in parallel (a session fixture), so the whole file stays short.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from functionlayer.testing.model import ScriptedModel, math_script

ROOT = Path(__file__).resolve().parents[1]
DOCS = [
    ROOT / "README.md",
    *sorted(ROOT.glob("packages/*/README.md")),
    *sorted(ROOT.glob("docs/*.md")),
]
FRAGMENT = re.compile(r"#\s*fragment of (\S+?):?(\s.*)?")
EXAMPLE_COMMAND = re.compile(r"uv run\b[^`\n#]*?\bpython (examples/\S+\.py)")
SNIPPET_TIMEOUT = 300  # seconds, per snippet (a busy machine); on an idle one the file takes ~1 min
WORKERS = max(2, min(6, 2 * (os.cpu_count() or 1)))  # frameworks are CPU-bound while importing


@dataclass(frozen=True)
class Block:
    path: Path
    line: int  # of the opening fence
    lang: str
    code: str

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def fragment_of(self) -> Path | None:
        first = self.code.lstrip("\n").split("\n", 1)[0]
        match = FRAGMENT.fullmatch(first.strip())
        return ROOT / match.group(1) if match else None


def _blocks() -> list[Block]:
    found: list[Block] = []
    for path in DOCS:
        lines = path.read_text(encoding="utf-8").split("\n")
        start: int | None = None
        lang = ""
        for number, line in enumerate(lines, 1):
            if start is None and line.startswith("```") and line.strip() != "```":
                start, lang = number, line.strip()[3:].strip()
            elif start is not None and line.strip() == "```":
                found.append(Block(path, start, lang, "\n".join(lines[start : number - 1]) + "\n"))
                start = None
    return found


BLOCKS = _blocks()
PYTHON = [b for b in BLOCKS if b.lang == "python"]
RUNNABLE = [b for b in PYTHON if b.fragment_of is None]
FRAGMENTS = [b for b in PYTHON if b.fragment_of is not None]
BASH_COMMANDS = [
    (block, line.split(" #", 1)[0].strip())
    for block in BLOCKS
    if block.lang in ("bash", "sh", "shell", "console")
    for line in block.code.split("\n")
    if EXAMPLE_COMMAND.search(line.split(" #", 1)[0])
]
ALL_COMMANDS = sorted(
    {
        (path.relative_to(ROOT).as_posix(), match.group(0))
        for path in [*DOCS, *sorted(ROOT.glob("examples/**/*.py"))]  # and the examples' own words
        for match in EXAMPLE_COMMAND.finditer(path.read_text(encoding="utf-8"))
    }
)


def _offline_env(**extra: str) -> dict[str, str]:
    """This environment without keys, servers or a way out; ``extra`` on top."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FUNCTIONLAYER_", "OPENAI_", "UV_", "VIRTUAL_ENV"))
    }
    dead = "http://127.0.0.1:9"
    env.update(HTTP_PROXY=dead, HTTPS_PROXY=dead, http_proxy=dead, https_proxy=dead)
    env.update(NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    env.update(OTEL_SDK_DISABLED="true", DO_NOT_TRACK="1", PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


@dataclass(frozen=True)
class Outcome:
    returncode: int | None  # None: timed out
    output: str


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> Outcome:
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            input="y\n" * 20,
            capture_output=True,
            text=True,
            timeout=SNIPPET_TIMEOUT,
        )
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout or b""
        text = out.decode(errors="replace") if isinstance(out, bytes) else out
        return Outcome(None, text)
    return Outcome(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    """Every runnable snippet and every bash example command, run once, in parallel."""
    base = tmp_path_factory.mktemp("snippets")
    clone = base / "clone"
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", f"file://{ROOT}", str(clone)],
        check=True,
        timeout=120,
    )
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    with ScriptedModel(math_script(), model="scripted-model") as model:
        jobs: dict[str, tuple[list[str], Path, dict[str, str]]] = {}
        model_env = {
            "OPENAI_API_KEY": "scripted-needs-no-key",
            "OPENAI_BASE_URL": model.base_url,  # the openai SDK and most frameworks
            "OPENAI_API_BASE": model.base_url,  # LlamaIndex's name for it
            "OPENAI_AGENTS_DISABLE_TRACING": "1",  # as the OpenAI Agents README says, offline
            "GOOGLE_GEMINI_BASE_URL": model.gemini_base_url,  # google-genai (Google ADK)
            "GOOGLE_API_KEY": "scripted-needs-no-key",
        }
        for block in RUNNABLE:
            cwd = base / f"snippet-{len(jobs)}"
            cwd.mkdir()
            (cwd / "snippet.py").write_text(block.code, encoding="utf-8")
            jobs[block.name] = ([sys.executable, "snippet.py"], cwd, _offline_env(**model_env))
        for block, command in BASH_COMMANDS:
            words = shlex.split(command)
            assert words[:2] == ["uv", "run"], command
            env = _offline_env(UV_PROJECT_ENVIRONMENT=sys.prefix, UV_OFFLINE="1")
            jobs[f"{block.name} $ {command}"] = ([uv, "run", "--no-sync", *words[2:]], clone, env)
        # The slow ones (a framework to import) first, so the short core snippets fill the end.
        slow = {b.name for b in RUNNABLE if "functionlayer_" in b.code} | {
            f"{b.name} $ {c}" for b, c in BASH_COMMANDS
        }
        order = sorted(jobs, key=lambda name: name not in slow)
        with ThreadPoolExecutor(max_workers=WORKERS) as pool:
            futures = {name: pool.submit(_run, *jobs[name]) for name in order}
            yield {name: future.result() for name, future in futures.items()}


def _check(outcomes: dict[str, Outcome], name: str) -> None:
    outcome = outcomes[name]
    assert outcome.returncode is not None, (
        f"{name} did not finish within {SNIPPET_TIMEOUT}s:\n{outcome.output[-3000:]}"
    )
    assert outcome.returncode == 0, f"{name} exited {outcome.returncode}:\n{outcome.output[-3000:]}"


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.name)
def test_python_snippet_runs(block: Block, outcomes: dict[str, Outcome]) -> None:
    _check(outcomes, block.name)


def _code_lines(text: str) -> list[str]:
    """Lines of code, stripped of indentation and trailing comments; blank and comment lines dropped."""
    lines = []
    for raw in text.split("\n"):
        line = re.sub(r"\s+#.*$", "", raw).strip()
        if line and not line.startswith("#"):
            lines.append(line)
    return lines


@pytest.mark.parametrize("block", FRAGMENTS, ids=lambda b: b.name)
def test_python_fragment_comes_from_its_file(block: Block) -> None:
    source = block.fragment_of
    assert source is not None
    assert source.is_file(), f"{block.name} names {source}, which does not exist"
    known = set(_code_lines(source.read_text(encoding="utf-8")))
    missing = [line for line in _code_lines(block.code) if line not in known]
    assert not missing, f"{block.name}: lines not in {source.relative_to(ROOT)}: {missing}"


@pytest.mark.parametrize(
    ("block", "command"), BASH_COMMANDS, ids=[f"{b.name}" for b, _ in BASH_COMMANDS]
)
def test_example_command_runs_from_a_fresh_clone(
    block: Block, command: str, outcomes: dict[str, Outcome]
) -> None:
    _check(outcomes, f"{block.name} $ {command}")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@functools.cache
def _exported(options: tuple[str, ...]) -> frozenset[str]:
    """The distributions ``uv run <options>`` installs, from the lock (nothing is downloaded)."""
    uv = shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    out = subprocess.run(
        [uv, "export", "--frozen", "--no-hashes", "--no-header", *options],
        cwd=ROOT,
        env=_offline_env(UV_OFFLINE="1"),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = set()
    for line in out.split("\n"):
        line = line.strip()
        if line.startswith("-e "):
            pyproject = ROOT / line[3:].strip() / "pyproject.toml"
            names.add(_normalize(tomllib.loads(pyproject.read_text())["project"]["name"]))
        elif line and not line.startswith("#"):
            names.add(_normalize(re.split(r"[=<>;\[ ]", line, maxsplit=1)[0]))
    return frozenset(names)


@functools.cache
def _providers() -> dict[str, list[str]]:
    """Top-level module -> the distributions of this venv that provide it."""
    providers = dict(importlib.metadata.packages_distributions())
    for pyproject in ROOT.glob("packages/*/pyproject.toml"):  # editable installs are not listed
        dist = tomllib.loads(pyproject.read_text())["project"]["name"]
        for module in (pyproject.parent / "src").iterdir():
            providers[module.name] = [dist]
    return providers


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules.add(node.module.split(".")[0])
    local = {p.stem for p in path.parent.parent.glob("*.py")} | {
        p.stem for p in path.parent.glob("*.py")
    }
    return {m for m in modules if m not in sys.stdlib_module_names and m not in local}


@pytest.mark.parametrize(("doc", "command"), ALL_COMMANDS, ids=[c for _, c in ALL_COMMANDS])
def test_example_command_installs_what_the_example_imports(doc: str, command: str) -> None:
    words = shlex.split(command)
    example = ROOT / words[-1]
    assert example.is_file(), f"{doc}: {command}: no such file"
    options = words[2 : words.index("python")]
    installed = _exported(tuple(options))
    providers = _providers()
    missing = {}
    for module in sorted(_imported_modules(example)):
        dists = {_normalize(d) for d in providers.get(module, [])}
        if not dists & installed:
            missing[module] = sorted(dists) or "no distribution in this venv"
    assert not missing, (
        f"{doc}: `{command}` would fail with ModuleNotFoundError: {missing} are not installed "
        f"by `uv run {' '.join(options)}`"
    )
