"""Standalone simulator app factory and a threaded werkzeug server for tests and the CLI."""

from __future__ import annotations

import ipaddress
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer, make_server

from app.simulator.views import bp

URL_PREFIX = "/simulator"
# The project's static files, for the virtual phone's vendored htmx (none in a bare install).
STATIC_DIR = Path(__file__).resolve().parents[2] / "static"


def create_simulator_app(config: dict[str, Any] | None = None) -> Flask:
    """A bare Flask app with only the simulator blueprint mounted at /simulator."""
    static = STATIC_DIR if (STATIC_DIR / "vendor").is_dir() else None
    app = Flask(__name__, static_folder=str(static) if static else None)
    app.config.update(config or {})
    app.register_blueprint(bp, url_prefix=URL_PREFIX)
    return app


def is_loopback(host: str) -> bool:
    """True for localhost and loopback literals (127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_bind_host(host: str, allow_remote: bool) -> None:
    """Refuse non-loopback binds unless asked: the simulator accepts any caller's pushes."""
    if not allow_remote and not is_loopback(host):
        raise ValueError(
            f"refusing to bind the Daraja simulator to {host!r}; pass allow_remote=True "
            "(CLI: --allow-remote) to expose it beyond this machine"
        )


@dataclass
class RunningServer:
    """Handle on a simulator served from a daemon thread."""

    server: BaseWSGIServer
    thread: threading.Thread
    host: str
    port: int
    _stopped: bool = field(default=False, repr=False)

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_url(self) -> str:
        """Daraja base URL to configure in a client, e.g. http://127.0.0.1:PORT/simulator."""
        return self.root_url + URL_PREFIX

    def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def serve_in_thread(
    app: Flask, host: str = "127.0.0.1", port: int = 0, *, allow_remote: bool = False
) -> RunningServer:
    """Serve app with a threaded werkzeug server (port 0 = pick a free one) in a daemon thread."""
    check_bind_host(host, allow_remote)
    # threaded=True: a push callback may be answered by this same server while it is busy.
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever,
        # shutdown() blocks for up to one poll interval; keep it short for tests.
        kwargs={"poll_interval": 0.1},
        name=f"daraja-simulator-{server.server_port}",
        daemon=True,
    )
    thread.start()
    return RunningServer(server=server, thread=thread, host=host, port=server.server_port)
