"""Hostile parameter sets against every action of a real server, signed as a client signs
them: no answer may be 6000 or an HTTP 5xx, the log gets no traceback, and a refused request
leaves the database as it was.

The generator is seeded (OPENCCS_FUZZ_SEED, default below) and bounded in requests and
time; a failure names the seed, the action and the parameters to replay it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import MetaData, create_engine, select
from sqlalchemy.engine import Engine

from openccs.api.params import MAX_DEPTH, MAX_INDEX, MAX_PARAMETERS
from openccs.api.registry import finalize
from openccs.api.signature import REQUEST_PATH, sign

from .conftest import BACKENDS, Account, Server, database_url, served

SEED = int(os.environ.get("OPENCCS_FUZZ_SEED", "20261129"))
ROUNDS = 30  # parameter sets per action
TIME_BUDGET_S = 60.0  # per backend; rounds go over all actions, so each gets its share
# Written by the server itself whatever the request: not state a request may change.
VOLATILE_TABLES = {"nonces", "alembic_version"}

HOSTILE_INTS = [
    "9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "2147483648",
    "-2147483649",
    "4294967296",
    "9" * 400,
    "9" * 5000,
    "²",
    "①",
    "¹²³",
    "١٢٣",
    "٣",
    "1e309",
    "1e3",
    "NaN",
    "inf",
    "-0",
    "0x10",
    "1_000",
    " 5 ",
    "+7",
    "00000000000000000000001",
    "-1",
    "",
]
HOSTILE_STRINGS = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\n",
    "\t",
    "x" * 70_000,
    "a" * 5000,
    "cls-" + "a" * 300,
    "../../etc/passwd",
    "/../..",
    "' OR 1=1 --",
    '"; DROP TABLE accounts; --',
    "%00",
    "%",
    "_",
    "\\",
    "*",
    "?",
    "${jndi:ldap://x}",
    "<script>alert(1)</script>",
    "😀" * 100,
    "\u202e\u200b",
    "ＡＢＣ",
    "İß",
    "true",
    "null",
    "[]",
    "{}",
    "cls-00000000",
    "ins-00000000",
    "vpc-00000000",
    "subnet-00000000",
    "default",
    "kube-system",
    "a:b",
    "a,b",
    "-",
]
COMMON_MUTATIONS = [
    ("Timestamp", HOSTILE_INTS),
    ("Nonce", HOSTILE_INTS),
    ("Region", ["", "xx", "gz\x00", "Ｇｚ", "g" * 5000]),
    ("SignatureMethod", ["MD5", "", "hmacsha256", "HmacSHA256\x00"]),
    ("SecretId", ["", "x" * 5000, "\x00", "AKID²"]),
]


def field_paths(schema: dict[str, Any]) -> list[tuple[str, str]]:
    """(dotted wire name, JSON type) of every parameter of a model, arrays as index 0."""
    defs = schema.get("$defs", {})
    out: list[tuple[str, str]] = []

    def walk(node: dict[str, Any], path: str, depth: int) -> None:
        if "$ref" in node:
            node = defs[node["$ref"].rsplit("/", 1)[-1]]
        for alt in node.get("anyOf", []) + node.get("allOf", []):
            walk(alt, path, depth)
        kind = node.get("type", "")
        if depth > 6:
            return
        if kind == "object" and "properties" in node:
            for name, sub in node["properties"].items():
                walk(sub, f"{path}.{name}" if path else name, depth + 1)
        elif kind == "object":
            out.append((f"{path}.key", "string"))
        elif kind == "array":
            walk(node.get("items", {}), f"{path}.0", depth + 1)
        elif path:
            out.append((path, kind or "string"))

    walk(schema, "", 0)
    return out or [("clusterId", "string")]


def hostile_set(
    rng: random.Random, fields: list[tuple[str, str]], real: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """A parameter set: a few of the action's parameters with real or hostile values (real
    ones reach the handlers' own checks), and one or more hostile shapes."""
    pairs: dict[str, str] = {}
    for name, kind in rng.sample(fields, min(len(fields), rng.randint(1, 6))):
        pool = HOSTILE_INTS if kind in ("integer", "number") else HOSTILE_STRINGS
        last = name.rsplit(".", 1)[-1]
        if last in real and rng.random() < 0.5:
            pairs[name] = rng.choice(real[last])
        else:
            pairs[name] = rng.choice(pool) if rng.random() < 0.8 else rng.choice(HOSTILE_STRINGS)
    name = rng.choice(fields)[0]
    top = name.split(".")[0]
    shape = rng.randrange(12)
    extra: list[tuple[str, str]] = []
    if shape == 0:
        extra.append((top + ".a" * rng.choice([MAX_DEPTH, 200, 1500]) + ".b", "1"))
    elif shape == 1:
        index = rng.choice([str(MAX_INDEX + 1), "99999", "9" * 50, "9" * 5000, "-1", "²"])
        extra.append((f"{top}.{index}.x", "1"))
    elif shape == 2:
        extra += [(top, "1"), (f"{top}.0", "2"), (f"{top}.0.x", "3")]
    elif shape == 3:
        extra += [(f"p{i}", "x") for i in range(MAX_PARAMETERS + rng.randint(1, 500))]
    elif shape == 4:
        extra.append((rng.choice([f"{top}..x", f"{top}.", f".{top}", "0", "0.a"]), "1"))
    elif shape == 5:
        extra.append((rng.choice([f"{top}\x00", "é" * 3, "n" * 10_000]), "1"))
    elif shape == 6:
        extra += [(f"{top}.{i}", rng.choice(HOSTILE_STRINGS)) for i in range(rng.randint(50, 400))]
    elif shape == 7:
        extra += [(f"{top}.{i}.{j}", "x") for i in range(30) for j in range(30)]
    elif shape == 8:
        extra += [(name, "1"), (name, "2")]  # the same name twice
    else:
        extra.append((name, rng.choice(HOSTILE_INTS + HOSTILE_STRINGS)))
    names = {n for n, _ in extra}
    return [(n, v) for n, v in pairs.items() if shape == 8 or n not in names] + extra


def send(
    http: httpx.Client,
    srv: Server,
    account: Account,
    action: str,
    pairs: list[tuple[str, str]],
    rng: random.Random,
) -> tuple[int, dict[str, Any], str]:
    """Sign and send; (HTTP status, JSON answer, how it was sent)."""
    # httpx refuses URLs above 64 KiB; the server's own GET limit (32 KiB) is below it.
    small = sum(len(n) + len(v) for n, v in pairs) < 16_000
    method = "GET" if small and rng.random() < 0.25 else "POST"
    host = f"127.0.0.1:{srv.http_port}"
    common = {
        "Action": action,
        "Region": "gz",
        "SecretId": account.secret_id,
        "Nonce": str(rng.randint(1, 2**62)),
        "Timestamp": str(int(time.time())),
        "SignatureMethod": "HmacSHA256",
    }
    if rng.random() < 0.1:
        key, pool = rng.choice(COMMON_MUTATIONS)
        common[key] = rng.choice(pool)
    signed = {**dict(pairs), **common}
    common["Signature"] = sign(account.secret_key, method, host, signed, "HmacSHA256")
    body = urlencode([*pairs, *common.items()])
    url = srv.http_url + REQUEST_PATH
    if method == "GET":
        r = http.get(f"{url}?{body}")
    else:
        r = http.post(
            url, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
    answer = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
    return r.status_code, answer, method


def dump(engine: Engine, meta: MetaData) -> dict[str, list[str]]:
    with engine.connect() as conn:
        return {
            t.name: sorted(repr(tuple(row)) for row in conn.execute(select(t)))
            for t in meta.sorted_tables
            if t.name not in VOLATILE_TABLES
        }


def changed(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, Any]:
    out = {}
    for table in before.keys() | after.keys():
        old, new = set(before.get(table, [])), set(after.get(table, []))
        if old != new:
            out[table] = {"gone": sorted(old - new)[:3], "new": sorted(new - old)[:3]}
    return out


@pytest.fixture(scope="module", params=BACKENDS)
def fuzzed(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of this module's own, without the sampler: only requests change its state."""
    base = tmp_path_factory.mktemp("fuzz")
    data_dir = base / "data"
    srv = Server(
        data_dir=data_dir,
        db_url=database_url(request.param, data_dir),
        extra_args=("--sample-interval", "0"),
    )
    with served(srv):
        yield srv


def test_hostile_parameters_to_every_action(fuzzed: Server) -> None:
    srv = fuzzed
    account = srv.new_account()  # no VPC: no machine can start, no one else is touched
    # A registry namespace and repository of its own: the registry handlers get past their
    # lookups (they keep no state outside the database).
    ns = f"fz{SEED % 10**6}"
    c = srv.client(account)
    for action, params in [
        ("CreateCCRNamespace", {"namespace": ns}),
        ("CreateRepository", {"reponame": f"{ns}/app", "public": 0}),
    ]:
        res = c.call(action, params)
        assert res["code"] == 0, (action, res)
    real = {
        "namespace": [ns],
        "reponame": [f"{ns}/app", f"{ns}/none"],
        "reponames": [f"{ns}/app"],
        "src_image": [f"{ns}/app:v1"],
        "dest_image": [f"{ns}/app:v2"],
        "tag": ["v1", "latest"],
        "repotype": ["QCLOUD HUB", "DOCKER HUB"],
    }
    engine = create_engine(srv.db_url or f"sqlite:///{srv.data_dir / 'openccs.db'}")
    meta = MetaData()
    meta.reflect(engine)
    actions = [a for a in finalize().all() if not a.test_only]
    fields = {a.name: field_paths(a.params.model_json_schema()) for a in actions}
    rng = random.Random(SEED)
    log_start = srv.log_path.stat().st_size
    seen: dict[str, int] = {}
    codes: dict[int, int] = {}
    deadline = time.monotonic() + TIME_BUDGET_S
    state = dump(engine, meta)
    try:
        with httpx.Client(timeout=30) as http:
            for round_no in range(ROUNDS):
                if time.monotonic() > deadline:
                    break
                for act in rng.sample(actions, len(actions)):
                    pairs = hostile_set(rng, fields[act.name], real)
                    status, answer, method = send(http, srv, account, act.name, pairs, rng)
                    code = answer.get("code", -1)
                    codes[code] = codes.get(code, 0) + 1
                    seen[act.name] = seen.get(act.name, 0) + 1
                    where = (
                        f"seed {SEED}, round {round_no}, {act.name} by {method}:"
                        f" {[(n[:60], v[:60]) for n, v in pairs[:8]]}"
                    )
                    assert status < 500, f"HTTP {status} for {where}"
                    assert code not in (-1, 6000), f"{answer} for {where}"
                    after = dump(engine, meta)
                    if code != 0:
                        diff = changed(state, after)
                        assert not diff, f"refused ({code}) yet changed {diff} for {where}"
                    state = after
    finally:
        engine.dispose()
    print(f"fuzz: seed {SEED}, {sum(seen.values())} requests, answers by code {codes}")
    log = srv.log_path.read_bytes()[log_start:].decode(errors="replace")
    assert "Traceback" not in log and "exc=" not in log, log[-3000:]
    assert "unhandled error" not in log
    # Every action got its share, and most sets were refused with the document's codes.
    assert set(seen) == {a.name for a in actions}
    assert sum(seen.values()) >= 2 * len(actions)
    assert sum(n for c, n in codes.items() if c in (4000, 4100, 4500)) > sum(seen.values()) // 2
