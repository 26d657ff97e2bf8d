"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import task  # noqa: F401
