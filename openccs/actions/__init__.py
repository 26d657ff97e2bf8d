"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import cluster, logs, namespace, registry, service, task  # noqa: F401
