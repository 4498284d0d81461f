"""A loopback TCP proxy a test puts in front of a server (PostgreSQL, a
broker) to make the faults a network makes:

- ``forward()``: bytes flow both ways; new connections reach the server;
- ``refuse()``: nothing listens, so a new connection is refused at once;
- ``cut()``: every open connection is dropped (reset), as when the server dies;
- ``down()``: both of those, as when the server process stops;
- ``blackhole()``: new connections are accepted and never answered, and open
  ones stop moving bytes, as when a firewall or a hung host swallows
  packets. Nothing is thrown away: what the client sent is held, and reaches
  the server if the proxy forwards again, the way TCP retransmits once a
  partition heals. So a test can prove that what a client gave up on does
  not land later.

It runs in OS threads on unpatched sockets, outside eventlet's hub: libpq
opens its sockets behind the hub's back, and a proxy socket the hub watched
could share a descriptor number with a new libpq connection. It listens on
127.0.0.1 only and stops by itself after ``lifetime`` seconds, so a test that
forgets it leaves nothing behind.
"""
from __future__ import annotations

import struct

import eventlet
import eventlet.patcher

from tests.support.net import free_port

_socket = eventlet.patcher.original("socket")
_select = eventlet.patcher.original("select")
_threading = eventlet.patcher.original("threading")
_time = eventlet.patcher.original("time")

FORWARD, REFUSE, BLACKHOLE = "forward", "refuse", "blackhole"
POLL_SECONDS = 0.05


def _wait_for(condition, timeout: float) -> bool:
    # Called from a test: eventlet.sleep lets the test's services (and, when
    # nothing is monkey-patched, just the clock) move on meanwhile.
    deadline = _time.monotonic() + timeout
    while not condition():
        if _time.monotonic() > deadline:
            return False
        eventlet.sleep(POLL_SECONDS)
    return True


class _Link:
    """One client connection and, once it is forwarded, its server side.
    Only the thread serving it closes its sockets: a descriptor closed under
    a thread still selecting on it could be reused by a new connection."""

    def __init__(self, client):
        self.client = client
        self.upstream = None
        self.dropped = False
        self.held = False  # it went through a blackhole
        self.quiet = False  # forwarding, with nothing left to pass on
        self.done = _threading.Event()


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, lifetime: float = 300.0):
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = FORWARD
        self.lifetime = lifetime
        self.links: list[_Link] = []
        self.accepted = 0
        self._listener = None
        self._lock = _threading.Lock()
        self._stopped = _threading.Event()
        self._lifetime_timer = None

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)

    def start(self) -> "TcpProxy":
        self._listen()
        self._lifetime_timer = _threading.Timer(self.lifetime, self._drop_everything)
        self._lifetime_timer.daemon = True
        self._lifetime_timer.start()
        return self

    def __enter__(self) -> "TcpProxy":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- the faults --------------------------------------------------------

    def forward(self) -> None:
        self.mode = FORWARD
        self._listen()

    def refuse(self) -> None:
        self.mode = REFUSE
        self._close_listener()

    def down(self) -> None:
        """Refuse new connections and drop the open ones."""
        self.refuse()
        self.cut()

    def blackhole(self) -> None:
        self.mode = BLACKHOLE
        self._listen()

    def cut(self) -> None:
        """Reset every open connection; new ones follow the mode."""
        with self._lock:
            links = list(self.links)
        for link in links:
            link.dropped = True
        _wait_for(lambda: all(link.done.is_set() for link in links), 5)

    def stop(self) -> None:
        if self._lifetime_timer is not None:
            self._lifetime_timer.cancel()
        self._drop_everything()
        _wait_for(lambda: not self.links, 5)

    def stop_later(self, seconds: float) -> None:
        """Forward for ``seconds`` more, then stop: for clients that are
        themselves still being shut down."""
        self.forward()
        if self._lifetime_timer is not None:
            self._lifetime_timer.cancel()
        self._lifetime_timer = _threading.Timer(seconds, self._drop_everything)
        self._lifetime_timer.daemon = True
        self._lifetime_timer.start()

    def _drop_everything(self) -> None:
        # Each connection's thread sees the flag and resets its sockets.
        self._stopped.set()
        self._close_listener()

    def open_connections(self) -> int:
        with self._lock:
            return len(self.links)

    def settled(self, timeout: float = 10.0) -> bool:
        """After ``forward()``: wait until every connection that was held in
        a blackhole has delivered what its client had sent, and has either
        closed or gone quiet. True if that happened within ``timeout``."""
        def quiet() -> bool:
            with self._lock:
                held = [link for link in self.links if link.held]
            return all(link.done.is_set() or link.quiet for link in held)

        return _wait_for(quiet, timeout)

    # -- plumbing ----------------------------------------------------------

    def _listen(self) -> None:
        with self._lock:
            if self._listener is not None or self._stopped.is_set():
                return
            listener = _socket.socket()
            listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            listener.bind(self.address)
            listener.listen(64)
            self._listener = listener
        _threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _close_listener(self) -> None:
        with self._lock:
            listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            listener.close()

    def _accept(self, listener) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # refused or stopped: the listener was closed
            link = _Link(client)
            with self._lock:
                self.links.append(link)
                self.accepted += 1
            _threading.Thread(target=self._serve, args=(link,), daemon=True).start()

    def _serve(self, link: _Link) -> None:
        # A blackholed connection waits here without a server behind it; it
        # is connected through only if the proxy forwards again.
        try:
            while self.mode != FORWARD:
                if self._stopped.is_set() or link.dropped:
                    return
                link.held = True
                _time.sleep(POLL_SECONDS)
            try:
                link.upstream = _socket.create_connection(self.target, timeout=5)
                link.upstream.settimeout(None)
            except OSError:
                link.dropped = True
                return
            self._pump(link)
        finally:
            with self._lock:
                if link in self.links:
                    self.links.remove(link)
            self._close(link)

    def _pump(self, link: _Link) -> None:
        ends = {link.client: link.upstream, link.upstream: link.client}
        open_for_reading = [link.client, link.upstream]
        try:
            while open_for_reading and not link.dropped and not self._stopped.is_set():
                if self.mode != FORWARD:
                    link.held, link.quiet = True, False
                    _time.sleep(POLL_SECONDS)  # hold the bytes, answer nothing
                    continue
                readable, _, _ = _select.select(open_for_reading, [], [], POLL_SECONDS)
                link.quiet = not readable
                for source in readable:
                    data = source.recv(65536)
                    if data:
                        ends[source].sendall(data)
                    else:
                        open_for_reading.remove(source)
                        ends[source].shutdown(_socket.SHUT_WR)
        except OSError:
            pass

    def _close(self, link: _Link) -> None:
        reset = link.dropped or self._stopped.is_set()
        for end in (link.client, link.upstream):
            if end is None:
                continue
            try:
                if reset:  # RST, not FIN: the peer sees the connection die
                    end.setsockopt(_socket.SOL_SOCKET, _socket.SO_LINGER, struct.pack("ii", 1, 0))
                end.close()
            except OSError:
                pass
        link.done.set()
