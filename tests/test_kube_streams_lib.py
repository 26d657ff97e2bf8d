"""The pieces under kubectl's streams and top, without a cluster: SPDY frames as they arrive
in pieces, and metrics.k8s.io objects made from a sampler pass."""

from __future__ import annotations

import struct
import zlib
from types import SimpleNamespace
from typing import Any

import pytest

from openccs.kube import metrics, spdy
from openccs.kube.errors import KubeError
from openccs.monitor.sampler import Series


def header_block(headers: dict[str, str], deflate: Any) -> bytes:
    raw = struct.pack(">I", len(headers))
    for k, v in headers.items():
        raw += struct.pack(">I", len(k)) + k.encode() + struct.pack(">I", len(v)) + v.encode()
    return bytes(deflate.compress(raw) + deflate.flush(zlib.Z_SYNC_FLUSH))


def syn_stream(stream_id: int, headers: dict[str, str], deflate: Any) -> bytes:
    body = struct.pack(">IIH", stream_id, 0, 0) + header_block(headers, deflate)
    return spdy.control(spdy.SYN_STREAM, 0, body)


def test_frames_split_across_messages_are_read_whole() -> None:
    # The client's compressor names the SPDY dictionary, as Go's does.
    deflate = zlib.compressobj(zdict=spdy.DICTIONARY)
    wire = (
        syn_stream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, deflate)
        + syn_stream(3, {"streamtype": "data", "port": "80", "requestid": "0"}, deflate)
        + spdy.data(3, b"GET / HTTP/1.0\r\n\r\n")
        + spdy.data(3, b"", fin=True)
        + spdy.control(spdy.PING, 0, struct.pack(">I", 7))
    )
    framer = spdy.Framer()
    frames: list[spdy.Control | spdy.Data] = []
    for i in range(0, len(wire), 5):  # Go writes a frame's fields one by one
        frames += framer.feed(wire[i : i + 5])
    assert [type(f).__name__ for f in frames] == ["Control", "Control", "Data", "Data", "Control"]
    first, second = frames[0], frames[1]
    assert isinstance(first, spdy.Control) and isinstance(second, spdy.Control)
    assert framer.syn_stream(first) == (1, {"streamtype": "error", "port": "80", "requestid": "0"})
    assert framer.syn_stream(second)[1]["streamtype"] == "data"
    assert frames[2] == spdy.Data(3, 0, b"GET / HTTP/1.0\r\n\r\n")
    assert frames[3] == spdy.Data(3, spdy.FLAG_FIN, b"")
    ping = frames[4]
    assert isinstance(ping, spdy.Control) and ping.type == spdy.PING
    assert framer.buf == bytearray()


def test_a_body_written_after_its_head_is_taken_as_it_came() -> None:
    # kubectl's tunnel sends a data frame's two header words and its body as three messages.
    framer = spdy.Framer()
    body = b"x" * 40_000
    frame = spdy.data(5, body)
    assert framer.feed(frame[:4]) == [] and framer.feed(frame[4:8]) == []
    (got,) = framer.feed(body)
    assert got == spdy.Data(5, 0, body) and got.data is body
    # A body with the start of the next frame: the rest waits for its own bytes.
    fin = spdy.data(5, b"", fin=True)
    assert framer.feed(frame[:8]) == []
    assert framer.feed(body + fin[:3]) == [spdy.Data(5, 0, body)]
    assert framer.buf == bytearray(fin[:3])
    assert framer.feed(fin[3:]) == [spdy.Data(5, spdy.FLAG_FIN, b"")]
    assert framer.buf == bytearray()


def test_replies_carry_readable_header_blocks() -> None:
    framer = spdy.Framer()
    inflate = zlib.decompressobj()
    for stream_id in (1, 3):
        reply = framer.syn_reply(stream_id)
        (frame,) = spdy.Framer().feed(reply)
        assert isinstance(frame, spdy.Control) and frame.type == spdy.SYN_REPLY
        assert spdy.stream_of(frame) == stream_id
        assert inflate.decompress(frame.data[4:]) == b"\0\0\0\0"  # no headers


def test_other_versions_and_bad_header_blocks_are_refused() -> None:
    with pytest.raises(spdy.SpdyError, match="version 2"):
        spdy.Framer().feed(struct.pack(">HHI", 0x8002, spdy.PING, 4) + b"\0\0\0\1")
    bad = spdy.control(spdy.SYN_STREAM, 0, struct.pack(">IIH", 1, 0, 0) + b"not zlib")
    framer = spdy.Framer()
    (frame,) = framer.feed(bad)
    assert isinstance(frame, spdy.Control)
    with pytest.raises(spdy.SpdyError, match="header block"):
        framer.syn_stream(frame)


def node(name: str, instance: str, cpu: int, gib: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "annotations": {"openccs.io/instance-id": instance}},
        "status": {"capacity": {"cpu": str(cpu), "memory": f"{gib * 1024 * 1024}Ki"}},
    }


def pod(name: str, *containers: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"app": name}},
        "spec": {"containers": [{"name": c} for c in containers]},
    }


SAMPLER: Any = SimpleNamespace(
    interval=10.0,
    latest_ts=1_800_000_000.0,
    latest=[
        Series("node", {"cluster": "cls-a", "node": "ins-1"},
               {"node_cpu_usage": 25.0, "node_mem_usage": 50.0}),
        Series("node", {"cluster": "cls-a", "node": "ins-2"}, {"node_mem_usage": 10.0}),
        Series("node", {"cluster": "cls-b", "node": "ins-3"}, {"node_cpu_usage": 99.0}),
        Series("container", {"cluster": "cls-a", "namespace": "default", "pod": "busy",
                             "container_name": "spin"},
               {"container_cpu_used": 0.95, "container_mem_used": 2.0}),
        Series("container", {"cluster": "cls-a", "namespace": "default", "pod": "two",
                             "container_name": "a"}, {"container_cpu_used": 0.1}),
    ],
)  # fmt: skip


def test_node_metrics_are_cores_and_bytes_of_the_nodes_capacity() -> None:
    nodes = [node("10.0.0.1", "ins-1", 2, 4), node("10.0.0.2", "ins-2", 2, 4)]
    out = metrics.node_metrics(SAMPLER, "cls-a", nodes)
    # ins-2 has no CPU rate yet (its first pass), the other cluster's node is not ours.
    assert [m["metadata"]["name"] for m in out] == ["10.0.0.1"]
    assert out[0]["usage"] == {"cpu": "500000000n", "memory": f"{2 * 1024 * 1024}Ki"}
    assert out[0]["window"] == "10s" and out[0]["timestamp"] == "2027-01-15T08:00:00Z"


def test_pod_metrics_need_every_container() -> None:
    out = metrics.pod_metrics(SAMPLER, "cls-a", [pod("busy", "spin"), pod("two", "a", "b")])
    assert [m["metadata"]["name"] for m in out] == ["busy"]
    assert out[0]["containers"] == [
        {"name": "spin", "usage": {"cpu": "950000000n", "memory": "2048Ki"}}
    ]


def test_a_pod_without_metrics_is_not_found_and_paths_are_checked() -> None:
    def objects(kind: str) -> list[dict[str, Any]]:
        return [pod("busy", "spin"), pod("two", "a", "b")] if kind == "pods" else []

    def answer(*rest: str) -> dict[str, Any]:
        return metrics.answer(SAMPLER, "cls-a", list(rest), objects, lambda o: True)

    assert answer("namespaces", "default", "pods")["kind"] == "PodMetricsList"
    assert answer("namespaces", "default", "pods", "busy")["kind"] == "PodMetrics"
    assert answer("namespaces", "other", "pods")["items"] == []
    with pytest.raises(KubeError) as err:
        answer("namespaces", "default", "pods", "two")
    assert err.value.code == 404 and "two" in err.value.message
    for bad in (("services",), ("namespaces", "default", "nodes"), ("pods", "a", "b")):
        with pytest.raises(KubeError):
            answer(*bad)
