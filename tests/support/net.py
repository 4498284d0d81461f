"""Loopback helpers: free ports and a TCP proxy that can cut a service off
from the broker without touching the shared RabbitMQ."""
from __future__ import annotations

import socket

import eventlet
from eventlet.green import socket as green_socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class CuttableProxy:
    """Forwards 127.0.0.1:<port> to a target; ``cut()`` drops every
    connection and refuses new ones until ``restore()``."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.connections: list = []
        self.listener = None
        self.server = None

    def start(self) -> "CuttableProxy":
        self.listener = green_socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", self.port))
        self.listener.listen(50)
        self.server = eventlet.spawn(self._accept)
        return self

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except Exception:  # cut() closed the listener
                return
            try:
                upstream = green_socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            self.connections += [client, upstream]
            eventlet.spawn(self._pipe, client, upstream)
            eventlet.spawn(self._pipe, upstream, client)

    @staticmethod
    def _pipe(source, sink):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
        except Exception:  # the other end or cut() closed the socket
            pass
        finally:
            for end in (source, sink):
                try:
                    end.close()
                except OSError:
                    pass

    def cut(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None
        for end in self.connections:
            try:
                end.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
            try:
                end.close()
            except Exception:
                pass
        self.connections = []

    def restore(self) -> None:
        self.start()

    stop = cut
