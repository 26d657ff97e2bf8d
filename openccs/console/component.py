"""The web console as a server component: its routes under /console on both listeners."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from . import pages
from .web import HERE, PREFIX, SECURITY_HEADERS, Console, Page

if TYPE_CHECKING:
    from starlette.requests import Request

    from openccs.server import Services

CLUSTER = PREFIX + "/clusters/{cid}"
SERVICE = CLUSTER + "/services/{ns}/{name}"

# (path, page, methods): the console's surface as a table.
PAGES: list[tuple[str, Page, list[str]]] = [
    (PREFIX + "/", pages.overview, ["GET"]),
    (PREFIX + "/clusters", pages.clusters, ["GET"]),
    (PREFIX + "/clusters", pages.create_cluster, ["POST"]),
    (CLUSTER, pages.cluster, ["GET"]),
    (CLUSTER + "/delete", pages.delete_cluster, ["POST"]),
    (CLUSTER + "/nodes", pages.add_nodes, ["POST"]),
    (CLUSTER + "/nodes/{iid}/{op}", pages.node_op, ["POST"]),
    (CLUSTER + "/namespaces", pages.create_namespace, ["POST"]),
    (CLUSTER + "/kubeconfig", pages.kubeconfig, ["GET"]),
    (CLUSTER + "/more", pages.cluster_more, ["GET"]),
    (CLUSTER + "/more/{op}", pages.cluster_more_op, ["POST"]),
    (CLUSTER + "/services", pages.services, ["GET"]),
    (CLUSTER + "/services", pages.create_service, ["POST"]),
    (CLUSTER + "/new-service", pages.new_service, ["GET"]),
    (SERVICE, pages.service, ["GET"]),
    (SERVICE + "/yaml", pages.service_yaml, ["GET"]),
    (SERVICE + "/events", pages.service_events, ["GET"]),
    (SERVICE + "/pods/{pod}", pages.pod, ["GET"]),
    (SERVICE + "/{op}", pages.service_op, ["POST"]),
    (PREFIX + "/monitoring", pages.monitoring, ["GET"]),
    (PREFIX + "/registry", pages.registry, ["GET"]),
    (PREFIX + "/registry/repository", pages.repository, ["GET"]),
    (PREFIX + "/registry/{op}", pages.registry_op, ["POST"]),
]


class _Static(StaticFiles):
    async def get_response(self, path: str, scope: dict) -> Response:  # type: ignore[override]
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "max-age=3600"
        return response


async def _home(_: Request) -> Response:
    return RedirectResponse(PREFIX + "/", status_code=308)


class ConsoleComponent:
    name = "console"

    def __init__(self, services: Services) -> None:
        self.console = Console(services)

    def routes(self) -> list[BaseRoute]:
        c = self.console
        routes: list[BaseRoute] = [
            Route(PREFIX, _home, methods=["GET"]),
            Route(PREFIX + "/login", c.login_form, methods=["GET"]),
            Route(PREFIX + "/login", c.login, methods=["POST"]),
            Route(PREFIX + "/logout", c.logout, methods=["POST"]),
            Mount(PREFIX + "/static", _Static(directory=HERE / "static"), name="console-static"),
        ]
        routes += [Route(path, c.page(fn), methods=methods) for path, fn, methods in PAGES]
        return routes

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass


def component(services: Services) -> ConsoleComponent:
    return ConsoleComponent(services)
