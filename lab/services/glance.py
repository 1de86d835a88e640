"""Glance (image) under uWSGI: its database on the lab's MariaDB, file store, image import with
qcow2 -> raw conversion (qemu-img from Debian's qemu-utils).

MariaDB, not SQLite: several uploads at once (a project's volumes in parallel) make SQLite
refuse writes ("database is locked") where a real cloud's database takes them.

Setting: LAB_<NAME>_IMAGE_SIZE_CAP or LAB_GLANCE_IMAGE_SIZE_CAP (bytes; unset:
256 MiB for lab-source, so tests can meet a cap without sending gigabytes, and
Glance's default (1 TiB) for lab-destination, where the benchmarks upload).
"""

from __future__ import annotations

from pathlib import Path

from .base import Service, ini, write_if_changed
from .keystone import DOMAIN, REGION, SERVICE_PROJECT
from .uwsgi import UwsgiService

SOURCE_IMAGE_SIZE_CAP = 256 * 1024 * 1024


class Glance(UwsgiService):
    kind = "glance"
    wsgi_app = "glance.wsgi.api:application"
    health_path = "/healthcheck"
    debian_packages = ("qemu-utils",)
    catalog_type = "image"
    keystone_roles = ("admin", "service")

    @property
    def requires(self) -> list[Service]:
        return [self.cloud.member("keystone"), self.mariadb]

    @property
    def mariadb(self) -> Service:
        return next(service for service in self.lab.shared if service.kind == "mariadb")

    @property
    def db_name(self) -> str:
        return "%s_glance" % self.cloud.name[len("lab-"):]

    @property
    def etc_dir(self) -> Path:
        return self.data_dir / "etc"

    @property
    def image_size_cap(self):
        default = SOURCE_IMAGE_SIZE_CAP if self.cloud.name == "lab-source" else None
        return self.int_setting("IMAGE_SIZE_CAP", default)

    def settings(self) -> dict[str, object]:
        return dict(super().settings(), image_size_cap=self.image_size_cap)

    def uwsgi_options(self) -> list[tuple[str, str]]:
        return super().uwsgi_options() + [
            ("http-chunked-input", "true"),
            ("http-raw-body", "true"),
            ("http-auto-chunked", "true"),
            # Cinder's upload-to-image sends chunks this large.
            ("chunked-input-limit", "67108864"),
        ]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["OS_GLANCE_CONFIG_DIR"] = str(self.etc_dir)
        return env

    def _config(self, db_url: str) -> str:
        keystone = self.cloud.member("keystone")
        data = self.data_dir
        return ini({
            "DEFAULT": {
                "use_stderr": True,
                "enabled_backends": "fs:file",
                "worker_self_reference_url": self.url,
                "image_size_cap": self.image_size_cap,
            },
            "database": {"connection": db_url},
            "glance_store": {"default_backend": "fs"},
            "fs": {"filesystem_store_datadir": data / "images"},
            "os_glance_staging_store": {"filesystem_store_datadir": data / "staging"},
            "os_glance_tasks_store": {"filesystem_store_datadir": data / "tasks"},
            "paste_deploy": {"flavor": "keystone",
                             "config_file": self.etc_dir / "glance-api-paste.ini"},
            "keystone_authtoken": {
                "www_authenticate_uri": keystone.url,
                "auth_url": keystone.url,
                "auth_type": "password",
                "user_domain_id": DOMAIN,
                "project_domain_id": DOMAIN,
                "project_name": SERVICE_PROJECT,
                "username": self.kind,
                "password": self.lab.secret(self.cloud.name, self.kind),
                "region_name": REGION,
                "service_token_roles_required": True,
            },
            "oslo_concurrency": {"lock_path": data / "locks"},
            # Under uWSGI sys.executable is the uwsgi binary; the image_conversion
            # plugin runs qemu-img through this interpreter.
            "wsgi": {"python_interpreter": self.lab.python},
        })

    def prepare(self) -> None:
        super().prepare()
        for sub in ("etc", "images", "staging", "tasks", "locks"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        paste = self.lab.package_file("etc/glance/glance-api-paste.ini").read_text()
        write_if_changed(self.etc_dir / "glance-api-paste.ini", paste)
        write_if_changed(self.etc_dir / "glance-api.conf", self._config(self.mariadb.sqlalchemy_url(self.db_name)))
        write_if_changed(self.etc_dir / "glance-image-import.conf", ini({
            "image_import_opts": {"image_import_plugins": "['image_conversion']"},
            "image_conversion": {"output_format": "raw"},
        }))
        stamp = self.data_dir / "db-ready-mariadb"
        if not stamp.exists():
            self.mariadb.drop_databases([self.db_name])
            self.mariadb.create_databases([self.db_name])
            self.run_tool([str(self.lab.venv_bin("glance-manage")), "--config-file",
                           str(self.etc_dir / "glance-api.conf"), "db_sync"])
            stamp.touch()
