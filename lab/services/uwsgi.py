"""A Python WSGI application of the lab venv served by uWSGI over plain HTTP."""

from __future__ import annotations

from pathlib import Path

from .base import HOST, Service, write_if_changed


class UwsgiService(Service):
    """Subclasses set wsgi_app ("module:callable") and may extend uwsgi_options()."""

    wsgi_app = ""

    @property
    def ini_path(self) -> Path:
        return self.data_dir / "uwsgi.ini"

    def uwsgi_options(self) -> list[tuple[str, str]]:
        return [
            ("http-socket", f"{HOST}:{self.port}"),
            ("virtualenv", str(self.lab.venv)),
            ("module", self.wsgi_app),
            # With master + die-on-term, SIGTERM stops uWSGI (by default it reloads).
            ("master", "true"),
            ("die-on-term", "true"),
            ("processes", "1"),
            ("threads", "4"),
            ("lazy-apps", "true"),
            ("need-app", "true"),
            ("buffer-size", "65535"),
            # Without it clients see "Connection reset by peer" on reused connections.
            ("add-header", "Connection: close"),
        ]

    def prepare(self) -> None:
        super().prepare()
        lines = ["[uwsgi]"] + [f"{key} = {value}" for key, value in self.uwsgi_options()]
        write_if_changed(self.ini_path, "\n".join(lines) + "\n")

    def command(self) -> list[str]:
        return [str(self.lab.venv_bin("uwsgi")), "--ini", str(self.ini_path)]
