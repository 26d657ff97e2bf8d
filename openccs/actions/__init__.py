"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import cluster, registry, task  # noqa: F401
