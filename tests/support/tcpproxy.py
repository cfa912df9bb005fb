"""A TCP proxy on a free loopback port that a test can cut, blackhole and restore.

cut() is an outage that says so (new connections refused, open ones reset);
blackhole() is a silent partition: every connection, open or new, is accepted
and held, and whatever flows is dropped, with no reset and no reply, so only
a client's own timeouts can end its wait.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.support.live import free_port


class _Link:
    """One client connection and its upstream (None while held in a blackhole)."""

    def __init__(self, client: socket.socket, server: socket.socket | None) -> None:
        self.client, self.server = client, server
        self.black = server is None

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.client, self.server) if s is not None]


class TcpProxy:
    """Forwards 127.0.0.1:port to an upstream address until cut or blackholed."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self._lock = threading.Lock()
        self._links: list[_Link] = []
        self._listener: socket.socket | None = None
        self._black = False
        self.restore()

    def restore(self) -> None:
        """Forward again: new connections get through (blackholed ones stay silent)."""
        with self._lock:
            self._black = False
            if self._listener is not None:
                return
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(256)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def blackhole(self) -> None:
        """Drop every byte of every connection, open or new, without closing any."""
        with self._lock:
            self._black = True
            for link in self._links:
                link.black = True

    def cut(self) -> None:
        """Refuse new connections and break every open one, as a database outage does."""
        with self._lock:
            listener, self._listener = self._listener, None
            links, self._links = self._links, []
        if listener is not None:
            listener.close()
        for link in links:
            for sock in link.sockets():
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            server = None
            if not self._black:
                try:
                    server = socket.create_connection(self.upstream, timeout=5)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
            link = _Link(client, server)
            with self._lock:
                if self._listener is not listener:
                    for sock in link.sockets():
                        sock.close()
                    return
                self._links.append(link)
            pairs = [(client, server), (server, client)] if server else [(client, None)]
            for src, dst in pairs:
                threading.Thread(target=self._pump, args=(link, src, dst), daemon=True).start()

    @staticmethod
    def _pump(link: _Link, src: socket.socket, dst: socket.socket | None) -> None:
        try:
            while data := src.recv(65536):
                if not link.black and dst is not None:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            if dst is not None and not link.black:
                with contextlib.suppress(OSError):
                    dst.shutdown(socket.SHUT_WR)
