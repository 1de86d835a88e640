"""Pieces shared by Nova, Placement, Cinder and Neutron: database URLs on the
shared MariaDB, the cloud's RabbitMQ vhost, keystonemiddleware and service-user
sections, and daemons (no HTTP port) whose readiness is a row in their database.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .base import Service
from .keystone import DOMAIN, REGION, SERVICE_PROJECT
from .uwsgi import UwsgiService


class CloudPart:
    """Mixin for a service of one cloud that uses the shared MariaDB/RabbitMQ."""

    lab = None
    cloud = None
    keystone_user = ""

    @property
    def short(self) -> str:
        return self.cloud.name[len("lab-"):]

    def infra(self, kind: str) -> Service:
        for service in self.lab.shared:
            if service.kind == kind:
                return service
        raise KeyError(kind)

    def db_name(self, name: str) -> str:
        return f"{self.short}_{name}"

    def db_url(self, name: str) -> str:
        return self.infra("mariadb").sqlalchemy_url(self.db_name(name))

    def transport_url(self) -> str:
        return self.infra("rabbitmq").transport_url(self.short)

    def auth(self, user: str | None = None, **extra) -> dict:
        """A keystoneauth password section for a service user of this cloud."""
        user = user or self.keystone_user
        keystone = self.cloud.member("keystone")
        section = {
            "auth_url": keystone.url,
            "auth_type": "password",
            "user_domain_id": DOMAIN,
            "project_domain_id": DOMAIN,
            "project_name": SERVICE_PROJECT,
            "username": user,
            "password": self.lab.secret(self.cloud.name, user),
            "region_name": REGION,
        }
        section.update(extra)
        return section

    def authtoken(self) -> dict:
        keystone = self.cloud.member("keystone")
        return self.auth(www_authenticate_uri=keystone.url,
                         service_token_roles_required=True)

    def privsep(self, conf: Path) -> dict:
        return {"helper_command":
                f"{self.lab.venv_bin('privsep-helper')} --config-file {conf}"}


class ApiService(CloudPart, UwsgiService):
    """An OpenStack API under uWSGI whose cloud part owns config and databases."""

    # The Keystone user of the service (created in project "service").
    keystone_roles = ("admin", "service")

    @property
    def requires(self) -> list[Service]:
        return [self.cloud.member("keystone")] + [s for s in self.lab.shared if s.kind in ("mariadb", "rabbitmq")]

    databases: tuple = ()

    def __init__(self, lab, name, port, cloud=None):
        super().__init__(lab, name, port, cloud)
        self._prepare_lock = threading.Lock()

    def prepare(self) -> None:
        # Also called by the service's daemons (they share its configuration).
        with self._prepare_lock:
            self._prepare()

    def _prepare(self) -> None:
        UwsgiService.prepare(self)

    @property
    def keystone_user(self) -> str:
        return self.kind.split("-")[0]

    def sync_once(self, *commands: list[str]) -> None:
        """Create this service's databases afresh and run its schema commands,
        once (a stamp in the data directory)."""
        stamp = self.data_dir / "db-ready"
        if stamp.exists():
            return
        mariadb = self.infra("mariadb")
        names = [self.db_name(name) for name in self.databases]
        mariadb.drop_databases(names)
        mariadb.create_databases(names)
        for command in commands:
            if not command[0].startswith("/"):
                command = [str(self.lab.venv_bin(command[0]))] + command[1:]
            self.run_tool(command)
        stamp.touch()


class Daemon(CloudPart, Service):
    """A non-HTTP process of an OpenStack service (conductor, scheduler, volume...).

    It shares the configuration its API service writes; it is ready once it has
    registered itself in the `services` table of `ready_database`.
    """

    api_kind = ""
    binary = ""
    ready_database = ""
    stop_timeout = 20.0

    def __init__(self, lab, name, port, cloud=None):
        super().__init__(lab, name, port, cloud)
        self._started_at = 0.0

    @property
    def api(self) -> Service:
        return self.cloud.member(self.api_kind)

    @property
    def requires(self) -> list[Service]:
        return [self.api]

    @property
    def health_url(self):
        return None

    @property
    def url(self) -> str:
        return "-"

    @property
    def marker(self) -> str:
        return str(self.api.data_dir)

    @property
    def data_dir(self) -> Path:
        return self.api.data_dir

    def port_in_use(self) -> bool:
        return False

    def prepare(self) -> None:
        self.api.prepare()  # the configuration it shares; cheap when done

    def settings(self) -> dict[str, object]:
        return {}

    def environment(self) -> dict[str, str]:
        return self.api.environment()

    def command(self) -> list[str]:
        return [str(self.lab.venv_bin(self.binary)), "--config-file",
                str(self.api.conf_path)]

    def start(self) -> None:
        self._started_at = time.time()
        super().start()

    def answering(self, timeout: float = 3.0) -> bool:
        if self.pid() is None:
            return False
        # Registered (or heartbeat) since it started, to the second.
        since = time.strftime("%Y-%m-%d %H:%M:%S",
                              time.gmtime(max(self._started_at - 1, 0)))
        rows = self.infra("mariadb").sql(
            f"SELECT COUNT(*) FROM `{self.db_name(self.ready_database)}`.services "
            f"WHERE `binary` = '{self.binary}' AND deleted = 0 AND "
            f"(updated_at >= '{since}' OR created_at >= '{since}');")
        return rows.strip() not in ("", "0")
