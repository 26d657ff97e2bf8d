"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import cluster, monitor, namespace, registry, service, task  # noqa: F401
