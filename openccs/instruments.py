"""openccs's own counters and histograms (API requests, tasks, controller and node agent
passes, registry traffic) and the Prometheus text format they and the sampler's series are
written in.

At the bottom of the import graph, so every layer may count: the instruments are
process-wide and thread-safe; the code that counts imports one of the module's instruments
and calls `inc` or `observe`, which costs a lock and a dict update. `/metrics` (monitor/)
renders them with the sampler's series.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable

LabelValues = tuple[str, ...]

# Seconds: from a fast API answer to a long controller pass.
DEFAULT_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fmt_labels(labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{escape(v)}"' for k, v in labels.items())
    return f"{{{inner}}}" if inner else ""


def fmt_value(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    return repr(float(value))


def family(
    name: str, kind: str, help_: str, samples: Iterable[tuple[dict[str, str], float]]
) -> list[str]:
    """One metric family: its HELP and TYPE lines, then a line per (labels, value)."""
    lines = [f"# HELP {name} {escape(help_)}", f"# TYPE {name} {kind}"]
    lines += [f"{name}{fmt_labels(labels)} {fmt_value(value)}" for labels, value in samples]
    return lines


class Counter:
    def __init__(self, name: str, help_: str, labels: tuple[str, ...]) -> None:
        self.name, self.help, self.labels = name, help_, labels
        self._values: dict[LabelValues, float] = {}
        self._lock = threading.Lock()

    def inc(self, *values: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[values] = self._values.get(values, 0.0) + amount

    def value(self, *values: str) -> float:
        with self._lock:
            return self._values.get(values, 0.0)

    def forget(self, *values: str) -> None:
        """Drop the series whose first labels are `values` (what they count is gone: a
        machine's agent closed), so /metrics does not keep them for the process's life."""
        with self._lock:
            for key in [k for k in self._values if k[: len(values)] == values]:
                del self._values[key]

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        samples = [(dict(zip(self.labels, k, strict=True)), v) for k, v in items]
        return family(self.name, "counter", self.help, samples)


class Histogram:
    def __init__(
        self,
        name: str,
        help_: str,
        labels: tuple[str, ...],
        buckets: tuple[float, ...] = DEFAULT_BUCKETS,
    ) -> None:
        self.name, self.help, self.labels, self.buckets = name, help_, labels, buckets
        # label values -> (count per bucket, not cumulative; sum; count)
        self._series: dict[LabelValues, tuple[list[int], list[float]]] = {}
        self._lock = threading.Lock()

    def observe(self, *values: str, seconds: float) -> None:
        i = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            counts, total = self._series.setdefault(
                values, ([0] * (len(self.buckets) + 1), [0.0, 0.0])
            )
            counts[i] += 1
            total[0] += seconds
            total[1] += 1

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, (list(c), list(t))) for k, (c, t) in self._series.items())
        lines = [f"# HELP {self.name} {escape(self.help)}", f"# TYPE {self.name} histogram"]
        for key, (counts, (total, count)) in items:
            labels = dict(zip(self.labels, key, strict=True))
            running = 0
            for bound, n in zip((*self.buckets, float("inf")), counts, strict=True):
                running += n
                le = fmt_labels({**labels, "le": fmt_value(bound)})
                lines.append(f"{self.name}_bucket{le} {running}")
            lines.append(f"{self.name}_sum{fmt_labels(labels)} {fmt_value(total)}")
            lines.append(f"{self.name}_count{fmt_labels(labels)} {int(count)}")
        return lines


API_REQUESTS = Counter(
    "openccs_api_requests_total",
    "API requests answered, by action and the answer's code (0 for success)",
    ("action", "code"),
)
API_DURATION = Histogram(
    "openccs_api_request_duration_seconds",
    "Time from a request's arrival to its answer, by action",
    ("action",),
)
TASKS = Counter(
    "openccs_tasks_total",
    "Long operations (tasks) that ended, by type and outcome (succ, fail)",
    ("type", "outcome"),
)
PASSES = Histogram(
    "openccs_controller_pass_duration_seconds",
    "Wall time of one reconciliation pass, by controller",
    ("controller",),
)
AGENT_PASSES = Counter(
    "openccs_agent_passes_total",
    "Node agent passes, by machine and outcome (worked; quiet: nothing it reads changed, it"
    " stopped after listing the containers; skipped: nothing could have changed, as the"
    " machine's generation and its unbroken event stream say, it stopped without a call)",
    ("machine", "outcome"),
)
REGISTRY_EVENTS = Counter(
    "openccs_registry_events_total",
    "Image pushes and pulls the registry reported, by action (push, pull)",
    ("action",),
)
INSTRUMENTS: tuple[Counter | Histogram, ...] = (API_REQUESTS, API_DURATION, TASKS, PASSES,
                                                AGENT_PASSES, REGISTRY_EVENTS)  # fmt: skip


def render_own() -> list[str]:
    lines: list[str] = []
    for instrument in INSTRUMENTS:
        lines += instrument.render()
    return lines
