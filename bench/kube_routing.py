"""The Kubernetes API's routing cost, in-process: requests straight into one cluster's app
(ASGI, no sockets, no machines) over an empty SQLite store, so what is measured is routing,
authentication and the answer. CPU time of the process per request (less disturbed by other
load than wall time), in microseconds, per path; one JSON line.

A/B against another commit: export it (`git archive REF | tar -x -C DIR`) and run this file
with `PYTHONPATH=DIR` (the export's openccs), alternating with the working tree a few times.
Prints only; bench/RESULTS.md records what was run. `.venv/bin/python bench/kube_routing.py [N]`
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

import openccs.actions  # noqa: F401  (first: the actions and kube.app import each other)
from openccs.config import Settings
from openccs.domain import accounts
from openccs.kube.app import ClusterApi
from openccs.server import build_services

PATHS = (
    "/api/v1",  # discovery
    "/apis/apps/v1",
    "/api/v1/namespaces/default/pods",  # a list (empty)
    "/apis/apps/v1/namespaces/default/deployments/web",  # an object (not found)
    "/nowhere",  # no route
)


async def measure(api: ClusterApi, n: int) -> dict[str, float]:
    out: dict[str, float] = {}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app),
        base_url="http://kube",
        headers={"Authorization": "Bearer token"},
    ) as c:
        for path in PATHS:
            for _ in range(20):
                await c.get(path)
            start = time.process_time()
            for _ in range(n):
                await c.get(path)
            out[path] = round((time.process_time() - start) / n * 1e6, 1)
    return out


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1500
    with tempfile.TemporaryDirectory(prefix="openccs-kube-routing-") as tmp:
        services = build_services(Settings(data_dir=Path(tmp), http=None, https=None))
        with services.store.session() as s:
            account_id = accounts.create_account(s, name="bench").id
        api = ClusterApi(services, "cls-routing", account_id, "token")
        print(json.dumps(asyncio.run(measure(api, n))))
        services.store.engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
