"""Monitoring: a sampler reading the machines' cgroup and network counters, rollups stored per
period for GetMonitorData, and the same samples as Prometheus metrics on `/metrics`."""
