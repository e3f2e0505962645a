"""How many calls reach a person in a day of agent traffic: no grants, grants, operator rules.

A scripted day (1,000 calls of 5 functions, most of them repetitive, a few large or unusual)
runs three ways against the real approval service and store (SQLite, a fresh file each):

1. no grants: every call waits for a person;
2. grants: a scripted person, on first sight of a kind of call they approve, also grants
   future calls like it (bounded: a scope, one agent token, a day, a number of uses);
3. operator rules: the operator's policy file approves the routine calls, rejects the
   unacceptable ones and routes large wires to two persons.

It prints, for each, how many calls reached a person, how many ran, and checks that no call
ran outside what a person or an operator rule allowed: every call that ran was approved by a
person, under a grant whose scope (checked here again, independently) covers its arguments
and whose person would have approved it, or by an operator rule whose conditions it meets.

Run: ``uv run --no-sync python bench/interruptions.py``.
"""

from __future__ import annotations

import asyncio
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from functionlayer.models import FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, Settings
from functionlayer_server._conditions import parse_condition
from functionlayer_server._service import FUNCTION_CALL
from functionlayer_server._store import open_store, prepare_database

CALLS = 1000
SEED = 18
CUSTOMERS = ["acme", "globex", "initech", "umbrella", "hooli"]

POLICY_BASE = """
[projects.default.functions.wire_money]
approvals_required = 2
responders = ["dana", "erin"]
"""

POLICY_RULES = (
    POLICY_BASE
    + """
[[projects.default.rules]]
name = "receipts"
fn = "send_email"
when = ['template == "receipt"']
action = "approve"

[[projects.default.rules]]
name = "small refunds"
fn = "refund"
when = ["amount <= 100"]
action = "approve"

[[projects.default.rules]]
name = "routine tickets"
fn = "create_ticket"
when = ['priority in ["low", "normal"]']
action = "approve"

[[projects.default.rules]]
name = "no mass deletes"
fn = "delete_records"
when = ["count > 100"]
action = "reject"
reason = "Deleting more than 100 records at once is never allowed; ask an operator."

[[projects.default.rules]]
name = "huge wires to finance"
fn = "wire_money"
when = ["amount > 10000"]
action = "route"
approvals_required = 2
responders = ["dana", "erin"]
"""
)


def day(seed: int = SEED) -> list[tuple[str, dict[str, Any]]]:
    """The scripted traffic: mostly receipts, small refunds and routine tickets."""
    rnd = random.Random(seed)
    calls: list[tuple[str, dict[str, Any]]] = []
    for _ in range(CALLS):
        roll = rnd.random()
        customer = rnd.choice(CUSTOMERS)
        if roll < 0.40:
            template = "receipt" if rnd.random() < 0.95 else "apology"
            calls.append(("send_email", {"to": customer, "template": template}))
        elif roll < 0.70:
            amount = rnd.randint(5, 90) if rnd.random() < 0.95 else rnd.choice([450, 5000])
            calls.append(("refund", {"amount": amount, "to": customer}))
        elif roll < 0.95:
            priority = rnd.choice(["low", "normal", "normal", "normal", "urgent"])
            calls.append(
                ("create_ticket", {"priority": priority, "team": rnd.choice(["ops", "billing"])})
            )
        elif roll < 0.98:
            calls.append(
                ("wire_money", {"amount": rnd.choice([2500, 8000, 50_000]), "to": customer})
            )
        else:
            calls.append(("delete_records", {"table": "sessions", "count": rnd.choice([10, 5000])}))
    return calls


def person_approves(fn: str, kwargs: dict[str, Any]) -> bool:
    """The scripted person's judgement (what a careful human would say)."""
    if fn == "refund":
        return bool(kwargs["amount"] <= 1000)
    if fn == "delete_records":
        return bool(kwargs["count"] <= 100)
    if fn == "wire_money":
        return bool(kwargs["amount"] <= 20_000)
    return True


def grant_scope(fn: str, kwargs: dict[str, Any]) -> list[str] | None:
    """What the scripted person grants on first sight (None: nothing; never wire or delete)."""
    if fn == "send_email":
        return [f'to == "{kwargs["to"]}"', f'template == "{kwargs["template"]}"']
    if fn == "refund" and kwargs["amount"] <= 100:
        return ["amount <= 100", f'to == "{kwargs["to"]}"']
    if fn == "create_ticket" and kwargs["priority"] != "urgent":
        return ['priority in ["low", "normal"]', f'team == "{kwargs["team"]}"']
    return None


async def run(mode: str, directory: Path) -> dict[str, Any]:
    url = f"sqlite:///{directory / f'{mode}.sqlite3'}"
    prepare_database(url)
    policy = directory / f"{mode}.toml"
    policy.write_text(POLICY_RULES if mode == "operator rules" else POLICY_BASE)
    service = ApprovalService(open_store(url), Settings(database_url=url, policy_file=str(policy)))
    await service.start(scheduler=False)
    try:
        for name in ("dana", "erin"):
            await service.accounts.create_person(name)
        client = await service.authenticate_token(await service.create_token("support-agent"))
        assert client is not None
        seen: set[tuple[str, ...]] = set()
        reached = ran = rejected = 0
        by: Counter[str] = Counter()
        violations: list[str] = []
        started = time.perf_counter()
        for index, (fn, kwargs) in enumerate(day()):
            call_id = f"call-{index}"
            record, _ = await service.create_record(
                FUNCTION_CALL,
                FunctionCall(
                    run_id="day", call_id=call_id, spec=FunctionCallSpec(fn=fn, kwargs=kwargs)
                ),
                created_by=client.token_name,
                created_by_token=client.token_id,
            )
            status = FunctionCallStatus.model_validate_json(record.status)
            if status.approved is None:  # a person is asked
                reached += 1
                approve = person_approves(fn, kwargs)
                deciders = ["dana", "erin"] if fn == "wire_money" and approve else ["dana"]
                for who in deciders:
                    decision = FunctionCallStatus(
                        approved=approve, comment=None if approve else "not like this"
                    )
                    await service.respond_function_call(
                        call_id, decision, responder=f"user:{who}", via="web"
                    )
                kind = (fn, *(f"{k}={v}" for k, v in sorted(kwargs.items()) if k != "amount"))
                scope = grant_scope(fn, kwargs) if mode == "grants" and approve else None
                if scope is not None and kind not in seen:
                    seen.add(kind)
                    await service.create_grant(
                        call_id,
                        {
                            "scope": scope,
                            "agents": "token",
                            "lifetime_seconds": 86400,
                            "max_uses": 500,
                        },
                        person_name="dana",
                        project="default",
                        via="web",
                    )
                status = (
                    await service.get_function_call(call_id, project="default")
                ).status or status
            if status.approved:
                ran += 1
                by[status.responded_via or "?"] += 1
                problem = await check(service, fn, kwargs, status)
                if problem:
                    violations.append(f"{call_id} {fn} {kwargs}: {problem}")
            else:
                rejected += 1
        seconds = time.perf_counter() - started
    finally:
        await service.stop()
    return {
        "mode": mode,
        "reached": reached,
        "ran": ran,
        "rejected": rejected,
        "by": dict(by),
        "violations": violations,
        "seconds": seconds,
    }


async def check(
    service: ApprovalService, fn: str, kwargs: dict[str, Any], status: FunctionCallStatus
) -> str | None:
    """Why this call should not have run (None: a person or a rule allowed exactly this)."""
    via = status.responded_via
    if via == "web":
        return None if person_approves(fn, kwargs) else "a person did not approve it"
    if via == "policy":
        name = (status.responded_by or "").removeprefix("rule:")
        for rule in service.rules.for_project("default").rules:
            if rule.name == name and rule.action == "approve" and rule.fn == fn:
                ok = all(c.matches(kwargs) for c in rule.when)
                return None if ok else f"rule {name!r} does not match"
        return f"no approve rule {name!r}"
    if via == "grant":
        grant_id = (status.comment or "").removeprefix("approved under grant ")
        row = await service.store.get_grant(grant_id)
        if row is None or row.fn != fn:
            return f"no grant {grant_id!r} for {fn}"
        import json

        scope = [parse_condition(t) for t in json.loads(row.scope)]
        if set(kwargs) - {c.arg for c in scope} or not all(c.matches(kwargs) for c in scope):
            return f"grant {grant_id} does not cover it"
        if not person_approves(fn, kwargs):
            return "the grant's person would not have approved it"
        return None
    return f"approved via {via!r}"


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        results = [
            asyncio.run(run(mode, Path(tmp))) for mode in ("no grants", "grants", "operator rules")
        ]
    traffic = Counter(fn for fn, _ in day())
    print(
        f"A scripted day: {CALLS} calls ({', '.join(f'{n} {fn}' for fn, n in traffic.most_common())})"
    )
    print(f"{'':16}{'reached a person':>18}{'ran':>6}{'not run':>9}   ran because of")
    failed = False
    for r in results:
        because = ", ".join(f"{k} {v}" for k, v in sorted(r["by"].items()))
        print(
            f"{r['mode']:16}{r['reached']:>18}{r['ran']:>6}{r['rejected']:>9}   {because}  ({r['seconds']:.1f} s)"
        )
        for line in r["violations"][:10]:
            print(f"  VIOLATION: {line}")
        failed = failed or bool(r["violations"])
    print(
        "No call ran outside what a person or an operator rule allowed."
        if not failed
        else "Some calls ran outside what a person or rule allowed!"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
