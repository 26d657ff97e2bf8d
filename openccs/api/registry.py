"""The action registry: every action is declared once with its parameter model and handler.

Lookup is case-insensitive and knows the document's typo aliases. Actions of the document
without a handler answer 6200 NotImplemented; names outside the document answer InvalidAction.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from openccs.errors import invalid_action, not_implemented

from .catalog import ALIASES, CATALOG
from .params import NoParams, Params

if TYPE_CHECKING:
    from .context import RequestContext

Handler = Callable[["RequestContext", Any], Any]


@dataclass(frozen=True)
class Action:
    name: str
    host: str
    params: type[Params]
    handler: Handler | None
    # Dotted paths of parameters naming resources a sub-account must be allowed to use.
    resources: tuple[str, ...] = ()
    # Why an action names no resource in its parameters (a listing filtered by the
    # allow-list, a check the handler makes on what it reads...): an empty `resources`
    # needs a written reason.
    unscoped: str = ""
    # Only the account owner's SecretId may call it (4103 for a sub-account).
    owner_only: bool = False
    # Hidden actions used by the test suite; registered only when the server enables them.
    test_only: bool = False
    # A cheap read of the database only: runs on the event loop instead of a worker thread
    # (thread hand-offs cost more than such a handler, and make latency less even).
    inline: bool = False
    # An action of openccs's own beyond the document (prefixed Openccs), listed apart.
    extension: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def implemented(self) -> bool:
        return self.handler is not None


class Registry:
    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._by_lower: dict[str, Action] = {}

    def add(self, action: Action) -> None:
        if action.name in self._actions:
            raise ValueError(f"action {action.name} declared twice")
        self._actions[action.name] = action
        self._by_lower[action.name.lower()] = action

    def lookup(self, name: str, include_test: bool = False) -> Action:
        canonical = ALIASES.get(name, name)
        action = self._by_lower.get(canonical.lower())
        if action is None or (action.test_only and not include_test):
            raise invalid_action(name)
        if action.handler is None:
            raise not_implemented(action.name)
        return action

    def all(self) -> list[Action]:
        return list(self._actions.values())

    def document_actions(self) -> list[Action]:
        return [self._actions[name] for name in CATALOG]

    def extension_actions(self) -> list[Action]:
        return sorted((a for a in self._actions.values() if a.extension), key=lambda a: a.name)


REGISTRY = Registry()


def action(
    name: str,
    params: type[Params] = NoParams,
    *,
    host: str | None = None,
    resources: tuple[str, ...] = (),
    unscoped: str = "",
    owner_only: bool = False,
    test_only: bool = False,
    inline: bool = False,
    extension: bool = False,
) -> Callable[[Handler], Handler]:
    """Declare the handler of an action (of the document, or an extra one with `host`)."""

    def register(fn: Handler) -> Handler:
        entry = CATALOG.get(name)
        if entry is None and host is None:
            raise ValueError(f"{name} is not an action of the document; give its host")
        REGISTRY.add(
            Action(
                name=name,
                host=host or (entry.host if entry else ""),
                params=params,
                handler=fn,
                resources=resources,
                unscoped=unscoped,
                owner_only=owner_only,
                test_only=test_only,
                inline=inline,
                extension=extension,
            )
        )
        return fn

    return register


def finalize() -> Registry:
    """Import every action module, then add the document's remaining actions as unimplemented."""
    from openccs import actions  # noqa: F401  (registers the handlers)

    for name, entry in CATALOG.items():
        if name not in REGISTRY._actions:
            REGISTRY.add(Action(name=name, host=entry.host, params=NoParams, handler=None))
    return REGISTRY
