"""A free TCP port of the host, for a listener to come."""

from __future__ import annotations

import socket

IP_FREEBIND = getattr(socket, "IP_FREEBIND", 15)


def free_port(host: str) -> int:
    """A port nothing listens on at `host` now (binding a socket: never inside a database
    transaction). The address need not be up yet (IP_FREEBIND)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.IPPROTO_IP, IP_FREEBIND, 1)
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
