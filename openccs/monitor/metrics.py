"""The metrics of GetMonitorData: their namespace, the dimensions naming their object, their
unit and how a period's value is made from the samples inside it.

Units follow the document: cores, %, MiB (2^20 bytes) where it writes MiB; MB, Mbps and KB
are decimal (10^6 bytes, 10^6 bit/s, 10^3 bytes), as network and disk rates usually are.
A period's value is the mean of its samples, except for the flux metrics ("traffic in the
time window"), which are the sum of the bytes of every sample interval inside it.
"""

from __future__ import annotations

from dataclasses import dataclass

NS_CVM = "qce/cvm"
NS_DOCKER = "qce/docker"

PERIODS = (60, 300, 3600, 86400)

# Object levels and the dimension names that identify an object of each, in order.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "cluster": ("docker_clusterid",),
    # Beyond the document (which charts clusters only in qce/cvm): one machine of a cluster.
    "node": ("docker_clusterid", "unInstanceId"),
    "service": ("clusterId", "serviceName", "namespace"),
    "pod": ("clusterId", "serviceName", "namespace", "podName"),
    "container": ("clusterId", "serviceName", "namespace", "podName", "containerId"),
}


@dataclass(frozen=True)
class Metric:
    name: str
    level: str  # cluster, node, service, pod, container
    unit: str
    help: str
    # "mean": the mean of the period's samples; "sum": their sum (traffic in the window).
    rollup: str = "mean"

    @property
    def namespace(self) -> str:
        return NS_CVM if self.level in ("cluster", "node") else NS_DOCKER


def _m(name: str, level: str, unit: str, help_: str, rollup: str = "mean") -> Metric:
    return Metric(name, level, unit, help_, rollup)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        _m("dc_cpu_usage", "cluster", "%", "mean CPU utilisation of the cluster's nodes"),
        _m("dc_mem_usage", "cluster", "%", "mean memory utilisation of the cluster's nodes"),
        _m("node_cpu_usage", "node", "%", "CPU utilisation of the node (machine)"),
        _m("node_mem_usage", "node", "%", "memory utilisation of the node (machine)"),
        _m("service_cpu_used", "service", "cores", "CPU used by all containers of the service"),
        _m("service_cpu_usage_for_cluster", "service", "%",
           "CPU of the service as a share of the cluster's CPU"),
        _m("service_mem_used", "service", "MiB", "memory used by all containers of the service"),
        _m("service_mem_usage_for_cluster", "service", "%",
           "memory of the service as a share of the cluster's memory"),
        _m("service_in_flux", "service", "MB", "bytes received by the service's pods", "sum"),
        _m("service_out_flux", "service", "MB", "bytes sent by the service's pods", "sum"),
        _m("service_in_bandwidth", "service", "Mbps", "receive bandwidth of the service's pods"),
        _m("service_out_bandwidth", "service", "Mbps", "send bandwidth of the service's pods"),
        _m("service_in_packets", "service", "packets/s", "packets received by the service's pods"),
        _m("service_out_packets", "service", "packets/s", "packets sent by the service's pods"),
        _m("pod_in_bandwidth", "pod", "Mbps", "receive bandwidth of the pod's network"),
        _m("pod_out_bandwidth", "pod", "Mbps", "send bandwidth of the pod's network"),
        _m("pod_in_flux", "pod", "MB", "bytes received by the pod", "sum"),
        _m("pod_out_flux", "pod", "MB", "bytes sent by the pod", "sum"),
        _m("pod_in_packets", "pod", "packets/s", "packets received by the pod"),
        _m("pod_out_packets", "pod", "packets/s", "packets sent by the pod"),
        _m("container_cpu_used", "container", "cores", "CPU used by the container"),
        _m("container_cpu_usage_for_node", "container", "%",
           "CPU of the container as a share of its node's"),
        _m("container_cpu_usage_for_request", "container", "%",
           "CPU of the container as a share of its request"),
        _m("container_cpu_usage_for_limit", "container", "%",
           "CPU of the container as a share of its limit (the node's when it has none)"),
        _m("container_mem_used", "container", "MiB",
           "memory used by the container (working set: usage less inactive file cache)"),
        _m("container_mem_usage_for_node", "container", "%",
           "memory of the container as a share of its node's"),
        _m("container_mem_usage_for_request", "container", "%",
           "memory of the container as a share of its request"),
        _m("container_mem_usage_for_limit", "container", "%",
           "memory of the container as a share of its limit (the node's when it has none)"),
        _m("container_disk_read_traffic", "container", "KB/s", "bytes read from disk"),
        _m("container_disk_write_traffic", "container", "KB/s", "bytes written to disk"),
        _m("container_disk_read", "container", "IOPS", "disk read operations per second"),
        _m("container_disk_write", "container", "IOPS", "disk write operations per second"),
    )
}  # fmt: skip


def metrics_of(level: str) -> list[Metric]:
    return [m for m in METRICS.values() if m.level == level]
