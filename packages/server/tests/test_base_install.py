"""``pip install functionlayer-server`` without extras: the server starts on SQLite; PostgreSQL and
Slack, when configured, fail with the command that installs their extra.

The extras' packages are hidden from a subprocess by an import hook (they are installed in the
test environment); ``scripts/check-wheels.sh`` checks the same against a real base install.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

BLOCK = """
import importlib.abc, sys
HIDDEN = {"psycopg", "psycopg_binary", "slack_sdk", "aiohttp", "nacl"}
class _Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None
sys.meta_path.insert(0, _Hide())
"""


def _run(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_SERVER_")}
    return subprocess.run(
        [sys.executable, "-c", BLOCK + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=env,
    )


def test_the_server_serves_sqlite_without_any_extra(tmp_path: Path) -> None:
    out = _run(
        """
        import sys
        from fastapi.testclient import TestClient
        from functionlayer_server import Settings, create_app
        app = create_app(Settings(database_url="sqlite:///./base.sqlite3"))
        with TestClient(app) as client:
            assert client.get("/healthz").json()["ok"] is True
            assert client.get("/inbox/login").status_code == 200
        loaded = sorted(m for m in ("psycopg", "slack_sdk", "aiohttp", "nacl") if m in sys.modules)
        print("loaded:", loaded)
        """,
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert "loaded: []" in out.stdout


def test_the_extras_are_not_imported_when_installed_but_unused(tmp_path: Path) -> None:
    code = """
        import sys
        from fastapi.testclient import TestClient
        from functionlayer_server import Settings, create_app
        with TestClient(create_app(Settings(database_url="sqlite:///./lazy.sqlite3"))) as client:
            assert client.get("/healthz").status_code == 200
        print(sorted(m for m in ("psycopg", "slack_sdk", "aiohttp") if m in sys.modules))
        """
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNCTIONLAYER_SERVER_")}
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_postgres_without_the_extra_names_it(tmp_path: Path) -> None:
    cli = """
        import sys
        from functionlayer_server._cli import main
        sys.exit(main(sys.argv[1:]))
        """
    for args in (
        ("tokens", "create", "a", "--database-url", "postgresql://u:secret@127.0.0.1:1/x"),
        ("serve", "--port", "0", "--database-url", "postgresql://u:secret@127.0.0.1:1/x"),
    ):
        out = _run(cli, tmp_path, *args)
        assert out.returncode == 1, out.stderr
        assert "pip install 'functionlayer-server[postgres]'" in out.stderr
        assert "psycopg" in out.stderr
        assert "Traceback" not in out.stderr and "secret" not in out.stderr


def test_slack_without_the_extra_names_it(tmp_path: Path) -> None:
    code = """
        import sys
        from functionlayer_server._cli import main
        sys.exit(main(["serve", "--port", "0", "--database-url", "sqlite:///./s.sqlite3"]))
        """
    env_code = "import os; os.environ['FUNCTIONLAYER_SERVER_SLACK_BOT_TOKEN'] = 'xoxb-1'\n"
    out = _run(env_code + textwrap.dedent(code), tmp_path)
    assert out.returncode == 1, out.stderr
    assert "the Slack channel needs the Python package" in out.stderr
    assert "pip install 'functionlayer-server[slack]'" in out.stderr
    assert "Traceback" not in out.stderr
