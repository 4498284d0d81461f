"""Loopback helpers: free ports (a proxy that makes network faults is
tests.support.tcp_proxy)."""
from __future__ import annotations

import random
import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# Below Linux's ephemeral range (32768-60999): a port here is never taken
# by an outgoing connection while the server that owns it is down.
STEADY_PORTS = range(20000, 32768)


def steady_port(taken: set[int] = frozenset()) -> int:
    """A free port for a server that is stopped and started again on it
    (a broker node): an ephemeral one from ``free_port`` can be handed to
    some outgoing connection while the server is down, and the restart then
    fails with "address in use"."""
    while True:
        port = random.choice(STEADY_PORTS)
        if port in taken:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
