"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import cluster, kube, namespace, registry, service, task  # noqa: F401
