"""Property: for random sequences of grants, revocations, policy changes, persons disabled and
calls, a call is approved without a fresh human decision only when a live grant or an operator
rule covers it at that moment (and when one does, it is), and no grant is used more often than
its limit, also with concurrent calls. The real service and store, on SQLite and PostgreSQL;
the oracle below is written independently of ``_grants``."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from functionlayer.models import FunctionCall, FunctionCallSpec, FunctionCallStatus
from functionlayer_server import ApprovalService, Settings
from functionlayer_server._conditions import parse_condition
from functionlayer_server._policy import FunctionRule, OperatorPolicy, OperatorRule, ProjectRules
from functionlayer_server._scheduler import ManualClock
from functionlayer_server._service import FUNCTION_CALL
from functionlayer_server._store import open_store, prepare_database
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests._support.servers import fresh_postgres_database

PERSONS = ("alice", "bob")
_counter = itertools.count()


@dataclass
class World:
    runner: asyncio.Runner
    service: ApprovalService
    clock: ManualClock
    tokens: tuple[str, str]
    """Token ids of two agent tokens of project ``default``."""


def _open(url: str) -> Iterator[World]:
    prepare_database(url)
    runner = asyncio.Runner()
    clock = ManualClock(1_000_000.0)
    service = ApprovalService(
        open_store(url), Settings(database_url=url, max_pending_per_token=0), clock=clock
    )

    async def setup() -> tuple[str, str]:
        await service.start(scheduler=False)
        for name in PERSONS:
            await service.accounts.create_person(name)
        await service.accounts.create_person("outsider", projects=["other"])
        ids = []
        for name in ("agent-a", "agent-b"):
            client = await service.authenticate_token(await service.create_token(name))
            assert client is not None
            ids.append(client.token_id)
        return ids[0], ids[1]

    tokens = runner.run(setup())
    try:
        yield World(runner, service, clock, tokens)
    finally:
        runner.run(service.stop())
        runner.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("grantprop") / "fl.sqlite3"
        yield from _open(f"sqlite:///{path}")
    else:
        with fresh_postgres_database() as url:
            yield from _open(url)


# -- the steps ----------------------------------------------------------------------------------

grant_step = st.tuples(
    st.just("grant"),
    st.sampled_from(PERSONS),
    st.integers(0, 200),  # bound: amount <= bound
    st.sampled_from(["token", "project"]),
    st.integers(1, 4),  # max uses
    st.integers(1, 100),  # lifetime seconds
)
call_step = st.tuples(
    st.just("call"),
    st.sampled_from([0, 1]),  # which agent token
    st.one_of(
        st.integers(0, 200),
        st.integers(0, 200),
        st.sampled_from(["50", True, None, -5, 250, 1.5]),
    ),
    st.booleans(),  # an extra argument outside any scope
)
steps = st.lists(
    st.one_of(
        grant_step,
        grant_step,
        call_step,
        call_step,
        call_step,
        call_step,
        st.tuples(st.just("revoke"), st.integers(0, 10)),
        st.tuples(st.just("disable"), st.sampled_from(PERSONS), st.booleans()),
        st.tuples(st.just("advance"), st.integers(1, 60)),
        st.tuples(
            st.just("policy"),
            st.sampled_from([None, True, False]),  # the function's grants setting
            st.sampled_from([1, 2]),  # its approvals_required
            st.sampled_from([None, 30, 180, -1]),  # approve rule amount <= N (-1: none)
            st.sampled_from([None, 150]),  # reject rule amount >= N
        ),
    ),
    min_size=1,
    max_size=30,
)


@dataclass
class ModelGrant:
    id: str
    person: str
    bound: int
    token: str | None
    max_uses: int
    expires_at: float
    uses: int = 0
    revoked: bool = False


def _policy(
    fn: str, grants: bool | None, required: int, approve: int | None, reject: int | None
) -> OperatorPolicy:
    rules = []
    # The approve rule comes first in the file: a reject rule wins wherever it stands.
    if approve is not None and approve >= 0:
        rules.append(
            OperatorRule("approve small", fn, (parse_condition(f"amount <= {approve}"),), "approve")
        )
    if reject is not None:
        rules.append(
            OperatorRule(
                "reject big", fn, (parse_condition(f"amount >= {reject}"),), "reject", "too big"
            )
        )
    return OperatorPolicy(
        default=ProjectRules(
            functions={fn: FunctionRule(approvals_required=required, grants=grants)},
            rules=tuple(rules),
        )
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=steps)
# Always tried, besides the random ones: a call both rules match, and a grant meeting them.
@example(sequence=[("policy", None, 1, 180, 150), ("call", 0, 160, False)])
@example(
    sequence=[
        ("grant", "alice", 200, "project", 4, 100),
        ("policy", None, 1, 180, 150),
        ("call", 1, 190, False),
        ("call", 1, 100, False),
    ]
)
def test_calls_are_approved_without_a_person_only_when_a_live_grant_or_rule_covers_them(
    world: World, sequence: list[tuple[Any, ...]]
) -> None:
    svc, clock = world.service, world.clock
    fn = f"fn{next(_counter)}"
    policy = {"grants": None, "required": 1, "approve": None, "reject": None}
    disabled: set[str] = set()
    grants: list[ModelGrant] = []

    async def call(which: int, amount: Any, extra: bool, call_id: str) -> None:
        now = clock.now()
        kwargs: dict[str, Any] = {} if amount is None else {"amount": amount}
        if extra:
            kwargs["memo"] = "x"
        token = world.tokens[which]
        record, _ = await svc.create_record(
            FUNCTION_CALL,
            FunctionCall(run_id="r", call_id=call_id, spec=FunctionCallSpec(fn=fn, kwargs=kwargs)),
            created_by="agent",
            created_by_token=token,
        )
        status = FunctionCallStatus.model_validate_json(record.status)
        # The oracle: what may decide this call now, without a person.
        numeric = _number(amount) and set(kwargs) == {"amount"}
        rejected = policy["reject"] is not None and _number(amount) and amount >= policy["reject"]
        by_rule = (
            policy["approve"] is not None
            and policy["approve"] >= 0
            and _number(amount)
            and amount <= policy["approve"]
        )
        grants_ok = policy["grants"] is not False and (
            policy["required"] == 1 or policy["grants"] is True
        )
        eligible = [
            g
            for g in grants
            if grants_ok
            and numeric
            and not g.revoked
            and g.expires_at > now
            and g.uses < g.max_uses
            and g.person not in disabled
            and (g.token is None or g.token == token)
            and amount <= g.bound
        ]
        if rejected:
            assert status.approved is False and status.responded_via == "policy"
        elif by_rule:
            assert status.approved is True and status.responded_via == "policy"
        elif eligible:
            assert status.approved is True and status.responded_via == "grant"
            used = next(g for g in grants if status.comment == f"approved under grant {g.id}")
            assert used in eligible
            used.uses += 1
        else:
            assert status.approved is None, (kwargs, status)

    async def run() -> None:
        for name in PERSONS:
            await svc.accounts.disable(name, False)
        svc.rules = _policy(fn, None, 1, None, None)
        for step in sequence:
            kind = step[0]
            now = clock.now()
            if kind == "policy":
                _, policy["grants"], policy["required"], policy["approve"], policy["reject"] = step
                svc.rules = _policy(fn, *step[1:])
            elif kind == "advance":
                clock.advance(step[1])
            elif kind == "disable":
                _, who, off = step
                await svc.accounts.disable(who, off)
                (disabled.add if off else disabled.discard)(who)
            elif kind == "revoke":
                if grants:
                    grant = grants[step[1] % len(grants)]
                    person = await svc.get_person(grant.person)
                    assert person is not None
                    try:
                        await svc.revoke_grant(grant.id, person, via="test")
                        grant.revoked = True
                    except Exception:
                        assert grant.revoked or grant.person in disabled
            elif kind == "grant":
                _, who, bound, agents, uses, lifetime = step
                source = f"src-{uuid.uuid4().hex[:10]}"
                await call(0, min(bound, 0), False, source)
                allowed = (
                    who not in disabled
                    and policy["grants"] is not False
                    and (policy["required"] == 1 or policy["grants"] is True)
                )
                try:
                    made = await svc.create_grant(
                        source,
                        {
                            "scope": [f"amount <= {bound}"],
                            "agents": agents,
                            "lifetime_seconds": lifetime,
                            "max_uses": uses,
                        },
                        person_name=who,
                        project="default",
                        via="test",
                    )
                except Exception:
                    assert not allowed
                    continue
                assert allowed
                grants.append(
                    ModelGrant(
                        made.id,
                        who,
                        bound,
                        world.tokens[0] if agents == "token" else None,
                        uses,
                        now + lifetime,
                    )
                )
            else:
                _, which, amount, extra = step
                await call(which, amount, extra, f"c-{uuid.uuid4().hex[:10]}")
        # No grant was ever used beyond its limit, and the store agrees with the oracle.
        for grant in grants:
            row = await svc.store.get_grant(grant.id)
            assert row is not None and row.uses == grant.uses <= row.max_uses

    world.runner.run(run())


def test_concurrent_calls_never_exceed_a_grants_uses(world: World) -> None:
    svc = world.service
    fn = f"fn{next(_counter)}"

    async def run() -> None:
        svc.rules = OperatorPolicy()
        for name in PERSONS:  # the module's world: a property example may have disabled one
            await svc.accounts.disable(name, False)
        await svc.create_record(
            FUNCTION_CALL,
            FunctionCall(
                run_id="r", call_id=f"src-{fn}", spec=FunctionCallSpec(fn=fn, kwargs={"amount": 1})
            ),
            created_by_token=world.tokens[0],
        )
        grant = await svc.create_grant(
            f"src-{fn}",
            {"scope": ["amount <= 10"], "agents": "project", "lifetime_seconds": 60, "max_uses": 7},
            person_name="bob",
            project="default",
            via="test",
        )

        async def one(index: int) -> bool | None:
            record, _ = await svc.create_record(
                FUNCTION_CALL,
                FunctionCall(
                    run_id="r",
                    call_id=f"{fn}-{index}",
                    spec=FunctionCallSpec(fn=fn, kwargs={"amount": 5}),
                ),
                created_by_token=world.tokens[index % 2],
            )
            return FunctionCallStatus.model_validate_json(record.status).approved

        results = await asyncio.gather(*(one(i) for i in range(30)))
        assert results.count(True) == 7 and results.count(None) == 23
        row = await svc.store.get_grant(grant.id)
        assert row is not None and row.uses == 7

    world.runner.run(run())
