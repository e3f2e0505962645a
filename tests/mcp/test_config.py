"""The gateway's configuration and rule semantics, table-driven (no processes)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from functionlayer_mcp import ConfigError, load_config
from functionlayer_mcp._config import parse_config

RULES = """
[[gate]]
tools = ["transfer_money", "delete_*"]
when.amount = { gt = 100 }

[[gate]]
tools = "deploy"
when.env = { in = ["prod", "staging"] }
when."target.region" = { glob = "eu-*" }

[[gate]]
tools = ["run_sql"]
when.query = { regex = "(?i)\\\\b(drop|delete|update)\\\\b" }

[[gate]]
tools = ["notify"]
when.dry_run = { exists = false }
"""


@pytest.mark.parametrize(
    ("tool", "arguments", "gated"),
    [
        ("transfer_money", {"amount": 500}, True),
        ("transfer_money", {"amount": 100}, False),
        ("transfer_money", {"amount": 100.5}, True),
        ("delete_user", {"amount": 101}, True),
        ("undelete_user", {"amount": 101}, False),  # globs match the whole name
        ("Transfer_money", {"amount": 500}, False),  # case-sensitive
        ("read_balance", {"amount": 500}, False),
        # When in doubt, gate: a missing or unjudgeable argument counts as matching.
        ("transfer_money", {}, True),
        ("transfer_money", {"amount": "500"}, True),
        ("transfer_money", {"amount": True}, True),
        ("transfer_money", {"amount": float("nan")}, True),  # compares false with anything
        ("transfer_money", {"amount": None}, True),
        ("deploy", {"env": "prod", "target": {"region": "eu-west-1"}}, True),
        ("deploy", {"env": "prod", "target": {"region": "us-east-1"}}, False),
        ("deploy", {"env": "dev", "target": {"region": "eu-west-1"}}, False),
        ("deploy", {"env": "prod"}, True),
        # A dotted name walks nested objects only; a look-alike flat key is never read as the
        # value, and when one is present the condition cannot be judged: gated.
        ("deploy", {"env": "prod", "target.region": "eu-west-1"}, True),
        ("deploy", {"env": "prod", "target": {"region": "eu-west-1"}, "target.region": "us"}, True),
        ("deploy", {"env": "prod", "target": {"region": "us-east-1"}, "target.region": "eu"}, True),
        ("deploy", {"env": "prod", "target": "eu-west-1"}, True),
        ("run_sql", {"query": "select 1"}, False),
        ("run_sql", {"query": "DROP table users"}, True),
        ("notify", {"dry_run": True}, False),
        ("notify", {}, True),
    ],
)
def test_rules(tool: str, arguments: dict[str, Any], gated: bool) -> None:
    config = parse_config(_toml(RULES))
    assert (config.gate_for(tool, arguments) is not None) is gated


def test_first_matching_gate_wins_and_carries_its_settings() -> None:
    config = parse_config(
        _toml(
            '[approval]\ntimeout_seconds = 30\nusers = ["ops"]\n'
            '[[gate]]\ntools = ["pay"]\ntimeout_seconds = 5\nusers = ["cfo"]\n'
            '[[gate]]\ntools = ["*"]\n'
        )
    )
    pay = config.gate_for("pay", {})
    other = config.gate_for("anything", {})
    assert pay is not None and pay.timeout_seconds == 5 and pay.users == ["cfo"]
    assert other is not None and other.timeout_seconds is None
    assert config.approval.timeout_seconds == 30 and config.approval.users == ["ops"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[[gate]]\ntools = []\n", "gate.0.tools"),
        ('[[gate]]\ntools = ["x"]\nwhen.a = {}\n', "at least one operator"),
        ('[[gate]]\ntools = ["x"]\nwhen.a = { regex = "(" }\n', "not a valid regular expression"),
        ('[[gate]]\ntools = ["x"]\nwhen.a = { gtt = 1 }\n', "gate.0.when.a.gtt"),
        ('[[gates]]\ntools = ["x"]\n', "gates"),
        ('[approval]\nbackend = "slack"\n', "approval.backend"),
        ("[approval]\ntimeout_seconds = 0\n", "approval.timeout_seconds"),
        ('[upstream]\ncommand = "a"\nurl = "http://x"\n', "not both"),
        ('[upstream]\nurl = "ftp://x"\n', "http(s)"),
    ],
)
def test_invalid_configurations_are_refused(text: str, problem: str, tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert problem in str(info.value)


def test_unreadable_or_non_toml_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[[gate]\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


SCHEMA = {"properties": {"to": {"type": "string"}, "amount": {"type": "number"}}}


def test_every_gate_name_must_match_a_listed_tool() -> None:
    config = parse_config(
        _toml('[[gate]]\ntools = ["transfer_mony", "read_*"]\n[[gate]]\ntools = ["delete_*"]\n')
    )
    problem = config.unknown_tools(
        {"transfer_money": SCHEMA, "read_balance": SCHEMA, "ping": SCHEMA}
    )
    assert problem is not None
    assert "gate 0: 'transfer_mony' matches no tool of the upstream (did you mean " in problem
    assert "'transfer_money'" in problem
    assert "gate 1: 'delete_*' matches no tool of the upstream" in problem
    assert "'read_*'" not in problem
    assert "The upstream lists: 'ping', 'read_balance', 'transfer_money'." in problem
    fits = {"transfer_mony": SCHEMA, "read_balance": SCHEMA, "delete_user": SCHEMA}
    assert config.unknown_tools(fits) is None
    assert parse_config({}).unknown_tools({}) is None


NESTED = {
    "$defs": {"T": {"properties": {"region": {"type": "string"}}, "type": "object"}},
    "properties": {"env": {}, "target": {"$ref": "#/$defs/T"}, "meta": {"type": "object"}},
}


@pytest.mark.parametrize(
    ("when", "problem"),
    [
        ("when.amount = { gt = 1 }", None),
        ("when.ammount = { exists = true }", "gate 0: when 'ammount' is not an argument of "),
        ('when."target.region" = { glob = "eu-*" }', None),
        ('when."target.regoin" = { glob = "eu-*" }', "when 'target.regoin' is not an argument"),
        ('when."env.anything" = { exists = true }', None),  # env's schema says nothing
        ('when."meta.anything" = { exists = true }', None),  # a free-form object
    ],
)
def test_every_condition_must_name_an_argument_of_the_gates_tools(
    when: str, problem: str | None
) -> None:
    config = parse_config(_toml(f'[[gate]]\ntools = ["transfer_money", "deploy"]\n{when}\n'))
    found = config.unknown_tools({"transfer_money": SCHEMA, "deploy": NESTED})
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found
        assert "'transfer_money', 'deploy'" in found or "'deploy', 'transfer_money'" in found


def test_upstream_command_string_is_split_like_a_shell() -> None:
    config = parse_config(_toml("[upstream]\ncommand = \"python 'my server.py' --flag\"\n"))
    assert config.upstream.command == ["python", "my server.py", "--flag"]


def _toml(text: str) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(text)
