"""A TCP proxy a test puts between a service and a server it depends on
(PostgreSQL, RabbitMQ), to fault that link without touching the shared
server: ``forward()`` (the default), ``refuse()`` new connections,
``cut()`` the existing ones, ``blackhole()`` (connections accepted, nothing
forwarded either way). Loopback only; green under ``nameko test``.

Sockets are only ever closed by the greenthreads that read them, after a
shutdown has woken them: closing a socket another greenthread is blocked
on leaves eventlet listening on a file descriptor the next connection may
reuse ("Second simultaneous read")."""
from __future__ import annotations

import socket

import eventlet
from eventlet.green import socket as green_socket

from tests.support.net import free_port


class _Link:
    """One client connection and its upstream: two pipes, closed by
    whichever of them finishes last."""

    def __init__(self, client, upstream):
        self.ends = (client, upstream)
        self.open_pipes = 2

    def shutdown(self):
        for end in self.ends:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pipe_done(self):
        self.open_pipes -= 1
        self.shutdown()  # wakes the other pipe
        if self.open_pipes == 0:
            for end in self.ends:
                try:
                    end.close()
                except OSError:
                    pass


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "forward"
        self.links: list[_Link] = []
        self.held: list = []
        self.listener = None
        self.server = None

    def start(self) -> "TcpProxy":
        self.listener = green_socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(50)
        self.server = eventlet.spawn(self._accept)
        return self

    def url_for(self, url: str, host: str, port: int) -> str:
        """``url`` with ``host:port`` replaced by this proxy's address."""
        return url.replace(f"{host}:{port}", f"127.0.0.1:{self.port}", 1)

    # ------------------------------------------------------------ faults

    def forward(self) -> None:
        self.mode = "forward"
        self._release_held()

    def refuse(self) -> None:
        """New connections are closed as soon as they are accepted."""
        self.mode = "refuse"

    def cut(self) -> None:
        """Drop every connection and refuse new ones until ``forward()``."""
        self.mode = "refuse"
        self._release_held()
        for link in self.links:
            link.shutdown()
        self.links = []

    def blackhole(self) -> None:
        """Accept new connections but forward nothing, and stop forwarding
        on the existing ones: the peer waits until its own timeout."""
        self.mode = "blackhole"

    def stop(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.kill()
            self.server = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None

    # ------------------------------------------------------------ plumbing

    def _release_held(self):
        for client in self.held:
            try:
                client.close()
            except OSError:
                pass
        self.held = []

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except Exception:  # stop() closed the listener
                return
            if self.mode == "refuse":
                client.close()
                continue
            if self.mode == "blackhole":
                self.held.append(client)
                continue
            try:
                upstream = green_socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            link = _Link(client, upstream)
            self.links.append(link)
            eventlet.spawn(self._pipe, link, client, upstream)
            eventlet.spawn(self._pipe, link, upstream, client)

    def _pipe(self, link, source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                while self.mode == "blackhole" and link in self.links:
                    eventlet.sleep(0.05)
                sink.sendall(data)
        except Exception:  # the other end or cut() shut the socket
            pass
        finally:
            link.pipe_done()
