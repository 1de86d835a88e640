"""Placement, Nova, Cinder and Neutron of one lab cloud.

Nova: API under uWSGI plus conductor, scheduler and compute processes; the
compute driver is the lab's LabDriver (lab/plugins), a fake hypervisor that
survives restarts and keeps a real root disk file per image-booted server, so
snapshots (createImage) carry real bytes. Cinder: API under uWSGI plus
scheduler and volume with the NFS driver over a local directory (bind-mounted
where the driver expects the share; volumes are sparse files). Neutron: the
API only (no agents), ports bound by the lab's mechanism driver.
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from .base import HOST, LabError, ini, write_if_changed
from .keystone import REGION
from .openstack import ApiService, Daemon

LAB_BIN = Path(__file__).resolve().parent.parent / "bin"


class Placement(ApiService):
    kind = "placement"
    wsgi_app = "placement.wsgi.api:application"
    catalog_type = "placement"
    databases = ("placement",)

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "etc" / "placement.conf"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["OS_PLACEMENT_CONFIG_DIR"] = str(self.conf_path.parent)
        return env

    def _prepare(self) -> None:
        super()._prepare()
        self.conf_path.parent.mkdir(exist_ok=True)
        write_if_changed(self.conf_path, ini({
            "DEFAULT": {"use_stderr": True},
            "placement_database": {"connection": self.db_url("placement")},
            "api": {"auth_strategy": "keystone"},
            "keystone_authtoken": self.authtoken(),
        }))
        self.sync_once(["placement-manage", "--config-file", str(self.conf_path), "db", "sync"])


class NovaApi(ApiService):
    kind = "nova-api"
    wsgi_app = "nova.wsgi.osapi_compute:application"
    catalog_type = "compute"
    databases = ("nova_api", "nova_cell0", "nova")
    health_path = "/"

    @property
    def requires(self):
        return super().requires + [self.cloud.member(k) for k in
                                   ("placement", "glance", "neutron", "cinder-api")]

    @property
    def endpoint_url(self) -> str:
        return self.url + "/v2.1"

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "etc" / "nova.conf"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["OS_NOVA_CONFIG_DIR"] = str(self.conf_path.parent)
        return env

    def _prepare(self) -> None:
        super()._prepare()
        etc = self.conf_path.parent
        etc.mkdir(exist_ok=True)
        for sub in ("instances", "locks", "state"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        write_if_changed(etc / "api-paste.ini",
                         self.lab.package_file("etc/nova/api-paste.ini").read_text())
        glance = self.cloud.member("glance")
        write_if_changed(self.conf_path, ini({
            "DEFAULT": {
                "use_stderr": True,
                "host": f"{self.short}-compute",
                "my_ip": HOST,
                "state_path": self.data_dir / "state",
                "instances_path": self.data_dir / "instances",
                "transport_url": self.transport_url(),
                "compute_driver": "cloudshift_lab.LabDriver",
                "allow_resize_to_same_host": True,
                "heal_instance_info_cache_interval": -1,
                "instance_usage_audit": True,
            },
            "api": {"auth_strategy": "keystone"},
            "wsgi": {"api_paste_config": etc / "api-paste.ini"},
            "api_database": {"connection": self.db_url("nova_api")},
            "database": {"connection": self.db_url("nova")},
            "keystone_authtoken": self.authtoken(),
            "service_user": self.auth(send_service_user_token=True),
            "placement": self.auth(),
            "neutron": self.auth(),
            "cinder": self.auth(os_region_name=REGION),
            "glance": {"api_servers": glance.url},
            "scheduler": {"discover_hosts_in_cells_interval": 5, "workers": 1},
            "conductor": {"workers": 1},
            "oslo_concurrency": {"lock_path": self.data_dir / "locks"},
            "oslo_messaging_notifications": {"driver": "noop"},
            "vnc": {"enabled": False},
            "nova_sys_admin": self.privsep(self.conf_path),
            "privsep_osbrick": self.privsep(self.conf_path),
            "compute": {"cpu_allocation_ratio": 16.0},
            # Fleets of test servers; the quota checks are tested with explicit limits.
            "quota": {"instances": 200, "cores": 400, "ram": 409600},
            "notifications": {"notify_on_state_change": None},
        }))
        nova_manage = str(self.lab.venv_bin("nova-manage"))
        conf = ["--config-file", str(self.conf_path)]
        self.sync_once([nova_manage, *conf, "api_db", "sync"],
                       [nova_manage, *conf, "cell_v2", "map_cell0", "--database_connection",
                        self.db_url("nova_cell0")],
                       [nova_manage, *conf, "cell_v2", "create_cell", "--name", "cell1"],
                       [nova_manage, *conf, "db", "sync"])


class NovaDaemon(Daemon):
    api_kind = "nova-api"
    ready_database = "nova"
    # After Keystone has its service users: conductor, scheduler and compute log
    # in to Placement at start (the conductor exits when that fails; compute
    # retries only a minute later).
    tier = 2


class NovaConductor(NovaDaemon):
    kind = "nova-conductor"
    binary = "nova-conductor"


class NovaScheduler(NovaDaemon):
    kind = "nova-scheduler"
    binary = "nova-scheduler"

    @property
    def requires(self):
        return super().requires + [self.cloud.member("nova-conductor")]


class NovaCompute(NovaDaemon):
    kind = "nova-compute"
    binary = "nova-compute"

    @property
    def requires(self):
        return super().requires + [self.cloud.member("nova-conductor")]

    def answering(self, timeout: float = 3.0) -> bool:
        # Schedulable: registered, and its host mapped to the cell (the scheduler
        # discovers new hosts every 5 s).
        if not super().answering(timeout):
            return False
        rows = self.infra("mariadb").sql(
            f"SELECT COUNT(*) FROM `{self.db_name('nova_api')}`.host_mappings "
            f"WHERE host = '{self.short}-compute';")
        if rows.strip() not in ("", "0"):
            return True
        # The scheduler's periodic discovery can lag by a minute on a busy machine.
        registered = self.infra("mariadb").sql(
            f"SELECT COUNT(*) FROM `{self.db_name('nova')}`.compute_nodes "
            f"WHERE host = '{self.short}-compute' AND deleted = 0;")
        if registered.strip() not in ("", "0"):
            self.run_tool([str(self.lab.venv_bin("nova-manage")), "--config-file",
                           str(self.api.conf_path), "cell_v2", "discover_hosts"])
        return False


class CinderApi(ApiService):
    kind = "cinder-api"
    wsgi_app = "cinder.wsgi.api:application"
    catalog_type = "volumev3"
    databases = ("cinder",)

    @property
    def requires(self):
        return super().requires + [self.cloud.member("glance")]

    @property
    def endpoint_url(self) -> str:
        return self.url + "/v3/$(project_id)s"

    @property
    def health_url(self):
        return self.url + "/"

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "etc" / "cinder.conf"

    @property
    def export_dir(self) -> Path:
        return self.data_dir / "export"

    @property
    def share(self) -> str:
        return f"{HOST}:{self.export_dir}"

    @property
    def mount_point(self) -> Path:
        digest = hashlib.md5(self.share.encode(), usedforsecurity=False).hexdigest()
        return self.data_dir / "mnt" / digest

    def uwsgi_options(self):
        return super().uwsgi_options() + [("pyargv", f"--config-file {self.conf_path}")]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["PATH"] = f"{LAB_BIN}:{env['PATH']}"
        return env

    def _prepare(self) -> None:
        super()._prepare()
        etc = self.conf_path.parent
        etc.mkdir(exist_ok=True)
        for sub in ("locks", "state", "export", "mnt"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        write_if_changed(etc / "api-paste.ini",
                         self.lab.package_file("etc/cinder/api-paste.ini").read_text())
        write_if_changed(etc / "nfs_shares", self.share + "\n")
        # Without it the API refuses every list filter (name=..., status=...).
        write_if_changed(etc / "resource_filters.json",
                         self.lab.package_file("etc/cinder/resource_filters.json").read_text())
        write_if_changed(self.conf_path, ini({
            "DEFAULT": {
                "use_stderr": True,
                "host": f"{self.short}-cinder",
                "my_ip": HOST,
                "state_path": self.data_dir / "state",
                "transport_url": self.transport_url(),
                "auth_strategy": "keystone",
                "api_paste_config": etc / "api-paste.ini",
                "enabled_backends": "nfs",
                "default_volume_type": "__DEFAULT__",
                "glance_api_servers": self.cloud.member("glance").url,
                "osapi_volume_workers": 1,
                "resource_query_filters_file": etc / "resource_filters.json",
                "quota_volumes": 500,
                "quota_snapshots": 500,
                # The default quota class in the database (10 volumes) would win.
                "use_default_quota_class": False,
                "quota_gigabytes": 5000,
            },
            "database": {"connection": self.db_url("cinder")},
            "keystone_authtoken": self.authtoken(),
            "service_user": self.auth(send_service_user_token=True),
            "nova": self.auth(interface="public"),
            "nfs": {
                "volume_driver": "cinder.volume.drivers.nfs.NfsDriver",
                "volume_backend_name": "nfs",
                "nfs_shares_config": etc / "nfs_shares",
                "nfs_mount_point_base": self.data_dir / "mnt",
                "nfs_sparsed_volumes": True,
                "nfs_snapshot_support": True,
                "nas_secure_file_operations": False,
                "nas_secure_file_permissions": False,
            },
            "oslo_concurrency": {"lock_path": self.data_dir / "locks"},
            "oslo_messaging_notifications": {"driver": "noop"},
            "cinder_sys_admin": self.privsep(self.conf_path),
            "privsep_osbrick": self.privsep(self.conf_path),
            "coordination": {"backend_url": f"file://{self.data_dir / 'locks'}"},
        }))
        self.sync_once([str(self.lab.venv_bin("cinder-manage")), "--config-file",
                        str(self.conf_path), "db", "sync"])
        self.mount_share()

    def mount_share(self) -> None:
        """Bind-mount the export where the NFS driver would mount the share (its
        check is /proc/mounts), so no NFS server or client is needed."""
        mounts = Path("/proc/mounts").read_text().split()
        if str(self.mount_point) in mounts:
            return
        self.mount_point.mkdir(parents=True, exist_ok=True)
        result = subprocess.run(["mount", "--bind", str(self.export_dir), str(self.mount_point)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise LabError(f"{self.name}: bind mount of the NFS export failed (root needed): "
                           f"{result.stderr.strip()}")

    def unmount_share(self) -> None:
        mounts = Path("/proc/mounts").read_text().split()
        if str(self.mount_point) in mounts:
            subprocess.run(["umount", str(self.mount_point)], check=False)


class CinderDaemon(Daemon):
    api_kind = "cinder-api"
    ready_database = "cinder"


class CinderScheduler(CinderDaemon):
    kind = "cinder-scheduler"
    binary = "cinder-scheduler"


class CinderVolume(CinderDaemon):
    kind = "cinder-volume"
    binary = "cinder-volume"

    def answering(self, timeout: float = 3.0) -> bool:
        # Registered is not enough: the NFS driver must have set itself up.
        if not super().answering(timeout):
            return False
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read()
        except OSError:
            return False
        # Only this start's lines (the log keeps earlier runs).
        text = text[max(text.rfind(b"labctl starts " + self.name.encode()), 0):]
        if b"Failed to initialize driver" in text:
            raise LabError(f"{self.name}: the NFS driver did not start\n{self.log_tail()}")
        return b"Driver initialization completed successfully" in text

    @property
    def requires(self):
        return super().requires + [self.cloud.member("cinder-scheduler")]


class Neutron(ApiService):
    kind = "neutron"
    wsgi_app = "neutron.wsgi.api:application"
    catalog_type = "network"
    databases = ("neutron",)

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "etc" / "neutron.conf"

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["OS_NEUTRON_CONFIG_DIR"] = str(self.conf_path.parent)
        return env

    def _prepare(self) -> None:
        super()._prepare()
        etc = self.conf_path.parent
        (etc / "plugins" / "ml2").mkdir(parents=True, exist_ok=True)
        for sub in ("locks", "state"):
            (self.data_dir / sub).mkdir(exist_ok=True)
        write_if_changed(etc / "api-paste.ini",
                         self.lab.package_file("etc/neutron/api-paste.ini").read_text())
        write_if_changed(self.conf_path, ini({
            "DEFAULT": {
                "use_stderr": True,
                "core_plugin": "ml2",
                "service_plugins": "router,segments",
                "auth_strategy": "keystone",
                "api_paste_config": etc / "api-paste.ini",
                "state_path": self.data_dir / "state",
                "transport_url": self.transport_url(),
                "rpc_workers": 0,
                "rpc_state_report_workers": 0,
                "api_workers": 1,
                "notify_nova_on_port_status_changes": False,
                "notify_nova_on_port_data_changes": False,
                "allow_overlapping_ips": True,
            },
            "database": {"connection": self.db_url("neutron")},
            "keystone_authtoken": self.authtoken(),
            "nova": self.auth(user="nova"),
            "oslo_concurrency": {"lock_path": self.data_dir / "locks"},
            "oslo_messaging_notifications": {"driver": "noop"},
        }))
        write_if_changed(etc / "plugins" / "ml2" / "ml2_conf.ini", ini({
            "ml2": {
                "type_drivers": "flat,vlan,vxlan,local",
                "tenant_network_types": "vxlan",
                "mechanism_drivers": "cloudshift_lab",
                "extension_drivers": "port_security",
            },
            "ml2_type_flat": {"flat_networks": "*"},
            "ml2_type_vlan": {"network_vlan_ranges": "physnet1:100:199"},
            "ml2_type_vxlan": {"vni_ranges": "1:1000"},
            "securitygroup": {"firewall_driver": "noop"},
        }))
        self.sync_once([str(self.lab.venv_bin("neutron-db-manage")), "--config-file",
                        str(self.conf_path), "--config-file",
                        str(etc / "plugins" / "ml2" / "ml2_conf.ini"), "upgrade", "heads"])
