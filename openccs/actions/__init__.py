"""Action handlers, one module per API group: decode, authorize, call the domain."""

from openccs.actions import (  # noqa: F401
    asg,
    cluster,
    faults,
    ingress,
    kube,
    logs,
    monitor,
    namespace,
    registry,
    service,
    task,
)
