"""Keystone (identity) under uWSGI with a SQLite database.

Per cloud: admin (bootstrap), project "migration" with the non-admin user
"migrator" (role member), and for every other member of the cloud a catalog
entry and, if it needs one, a service user in project "service".
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path

from .base import LabError, http_request, ini, write_if_changed, write_private
from .uwsgi import UwsgiService

REGION = "RegionOne"
DOMAIN = "default"
ADMIN_USER = ADMIN_PROJECT = "admin"
PROJECT = "migration"
USER = "migrator"
USER_ROLES = ("member",)
SERVICE_PROJECT = "service"
INTERFACES = ("public", "internal", "admin")


class Keystone(UwsgiService):
    kind = "keystone"
    wsgi_app = "keystone.wsgi.api:application"
    health_path = "/v3"
    catalog_type = "identity"

    @property
    def etc_dir(self) -> Path:
        return self.data_dir / "etc"

    @property
    def conf_path(self) -> Path:
        return self.etc_dir / "keystone.conf"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "keystone.sqlite"

    @property
    def auth_url(self) -> str:
        return self.url + "/v3"

    @property
    def endpoint_url(self) -> str:
        return self.auth_url

    def password(self, user: str) -> str:
        return self.lab.secret(self.cloud.name, user)

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["OS_KEYSTONE_CONFIG_DIR"] = str(self.etc_dir)
        return env

    def _config(self, db_path: Path) -> str:
        return ini({
            "DEFAULT": {"use_stderr": True},
            "database": {"connection": f"sqlite:///{db_path}"},
            # bcrypt cost 4 instead of 12: token issue ~0.25 s instead of ~1.2 s.
            "identity": {"password_hash_rounds": 4},
            "token": {"provider": "fernet"},
            "fernet_tokens": {"key_repository": self.data_dir / "fernet-keys"},
            "fernet_receipts": {"key_repository": self.data_dir / "fernet-keys"},
            "credential": {"key_repository": self.data_dir / "credential-keys"},
            # One uWSGI process, so an in-process cache stays coherent; without it
            # every authenticated call costs ~250 ms (~300 SQLite queries).
            "cache": {"enabled": True, "backend": "dogpile.cache.memory"},
        })

    def prepare(self) -> None:
        super().prepare()
        self.etc_dir.mkdir(exist_ok=True)
        write_if_changed(self.conf_path, self._config(self.db_path))
        stamp = self.data_dir / "bootstrapped"
        if stamp.exists():
            return
        self.sqlite_from_template("keystone", "keystone-manage")
        for repo in ("fernet-keys", "credential-keys"):
            self._key_repository(self.data_dir / repo)
        self.run_tool(
            [str(self.lab.venv_bin("keystone-manage")), "--config-file", str(self.conf_path),
             "bootstrap",
             "--bootstrap-username", ADMIN_USER,
             "--bootstrap-project-name", ADMIN_PROJECT,
             "--bootstrap-role-name", "admin",
             "--bootstrap-region-id", REGION,
             "--bootstrap-public-url", self.endpoint_url,
             "--bootstrap-internal-url", self.endpoint_url,
             "--bootstrap-admin-url", self.endpoint_url],
            env={"OS_BOOTSTRAP_PASSWORD": self.password(ADMIN_USER)})
        stamp.touch()

    @staticmethod
    def _key_repository(path: Path) -> None:
        # What `keystone-manage fernet_setup`/`credential_setup` write (a staged
        # key "0" and a primary key "1", each a Fernet key), without two more
        # keystone-manage runs of ~2 s each.
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(mode=0o700)
        for index in ("0", "1"):
            write_private(path / index, base64.urlsafe_b64encode(os.urandom(32)).decode())

    # -- users, projects and catalog, through the API -----------------------

    def _spec(self) -> dict:
        users = {USER: {"project": PROJECT, "roles": list(USER_ROLES),
                        "password": self.password(USER)}}
        catalog = []
        for member in self.cloud.members:
            if member.catalog_type:
                catalog.append({"type": member.catalog_type, "name": member.kind,
                                "url": member.endpoint_url})
            if member.keystone_roles:
                users[member.keystone_user] = {"project": SERVICE_PROJECT,
                                      "roles": list(member.keystone_roles),
                                      "password": self.password(member.keystone_user)}
        return {"projects": [PROJECT, SERVICE_PROJECT], "users": users, "catalog": catalog}

    def ready_hook(self) -> None:
        spec = self._spec()
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        stamp = self.data_dir / "provisioned"
        if stamp.exists() and stamp.read_text() == digest:
            return
        _Provisioner(self).apply(spec)
        write_private(stamp, digest)

    def clouds(self) -> dict[str, dict]:
        """Entries of clouds.yaml: the non-admin user and the admin."""
        common = {"region_name": REGION, "identity_api_version": 3, "interface": "public"}

        def entry(user: str, project: str) -> dict:
            auth = {"auth_url": self.auth_url, "username": user,
                    "password": self.password(user), "project_name": project,
                    "user_domain_id": DOMAIN, "project_domain_id": DOMAIN}
            return dict({"auth": auth}, **common)

        return {self.cloud.name: entry(USER, PROJECT),
                f"{self.cloud.name}-admin": entry(ADMIN_USER, ADMIN_PROJECT)}


class _Provisioner:
    """Idempotent create-or-update of Keystone resources as the admin."""

    def __init__(self, keystone: Keystone):
        self.keystone = keystone
        self.base = keystone.auth_url
        status, headers, body = http_request("POST", self.base + "/auth/tokens", {
            "auth": {
                "identity": {"methods": ["password"], "password": {"user": {
                    "name": ADMIN_USER, "domain": {"id": DOMAIN},
                    "password": keystone.password(ADMIN_USER)}}},
                "scope": {"project": {"name": ADMIN_PROJECT, "domain": {"id": DOMAIN}}},
            }})
        if status != 201:
            raise LabError(f"{keystone.name}: admin login failed ({status}): {body}")
        self.token = headers["X-Subject-Token"]

    def call(self, method: str, path: str, body=None, ok=(200, 201, 204)) -> dict:
        status, _, payload = http_request(method, self.base + path, body,
                                          {"X-Auth-Token": self.token})
        if status not in ok:
            raise LabError(f"{self.keystone.name}: {method} {path} -> {status}: {payload}")
        return payload or {}

    def ensure(self, collection: str, query: str, attrs: dict) -> dict:
        found = self.call("GET", f"/{collection}?{query}")[collection]
        if found:
            return found[0]
        return self.call("POST", f"/{collection}", {collection[:-1]: attrs})[collection[:-1]]

    def apply(self, spec: dict) -> None:
        projects = {name: self.ensure("projects", f"name={name}&domain_id={DOMAIN}",
                                      {"name": name, "domain_id": DOMAIN})
                    for name in spec["projects"]}
        roles: dict[str, dict] = {}
        for name, user in spec["users"].items():
            existing = self.call("GET", f"/users?name={name}&domain_id={DOMAIN}")["users"]
            if existing:
                user_id = existing[0]["id"]
                self.call("PATCH", f"/users/{user_id}",
                          {"user": {"password": user["password"], "enabled": True}})
            else:
                user_id = self.call("POST", "/users", {"user": {
                    "name": name, "domain_id": DOMAIN, "password": user["password"],
                    "default_project_id": projects[user["project"]]["id"]}})["user"]["id"]
            for role in user["roles"]:
                if role not in roles:
                    roles[role] = self.ensure("roles", f"name={role}", {"name": role})
                self.call("PUT", f"/projects/{projects[user['project']]['id']}/users/"
                                 f"{user_id}/roles/{roles[role]['id']}")
        for entry in spec["catalog"]:
            self.ensure_endpoints(entry)

    def ensure_endpoints(self, entry: dict) -> None:
        services = [s for s in self.call("GET", f"/services?type={entry['type']}")["services"]
                    if s.get("name") == entry["name"]]
        if services:
            service_id = services[0]["id"]
        else:
            service_id = self.call("POST", "/services", {"service": {
                "type": entry["type"], "name": entry["name"]}})["service"]["id"]
        endpoints: list[dict] = self.call(
            "GET", f"/endpoints?service_id={service_id}")["endpoints"]
        for interface in INTERFACES:
            mine = [e for e in endpoints
                    if e["interface"] == interface and e.get("region_id") == REGION]
            if not mine:
                self.call("POST", "/endpoints", {"endpoint": {
                    "service_id": service_id, "interface": interface,
                    "region_id": REGION, "url": entry["url"]}})
            elif mine[0]["url"] != entry["url"]:
                self.call("PATCH", f"/endpoints/{mine[0]['id']}",
                          {"endpoint": {"url": entry["url"]}})
