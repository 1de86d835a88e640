"""A web site to move: three MariaDB servers, two web backends and HAProxy in front.

- site-db0 (the old primary), site-db1 and site-db2 (the new cloud's nodes): MariaDB with
  binary logs, GTIDs (gtid_strict_mode) and their own server_id, empty but for a database
  "app" and three users: "admin" (everything, for the migration), "repl" (replication),
  "app" (the application: reads and writes "app", no READ_ONLY ADMIN, so read_only stops it).
  Replication between them is the scenario's business, not the lab's.
- site-web-old and site-web-new: tiny HTTP servers answering "old" and "new".
- site-haproxy: HAProxy with its runtime API on a unix socket (level admin), a server-state
  file (so a reload keeps runtime changes), TCP frontends for the databases (backend "db":
  MariaDB site-db0/site-db1, backend "pg": PostgreSQL site-pg0/site-pg1; servers old/new) and an HTTP frontend for the web (backend "web", servers old/new) with a
  maintenance page switched by an ACL file.

Endpoints and passwords for clients go to .lab/site.json (mode 0600).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .base import HOST, Service, write_if_changed, write_private
from .mariadb import MariaDB

DB_PORTS = {"site-db0": 13400, "site-db1": 13401, "site-db2": 13402}
WEB_PORTS = {"site-web-old": 13481, "site-web-new": 13482}
HAPROXY_PORTS = {"web": 13480, "db": 13490, "pg": 13491}
PG_PORTS = {"site-pg0": 13432, "site-pg1": 13433, "site-pg2": 13434}


def site_tls(lab) -> dict:
    """One lab CA and one server certificate (SAN IP:127.0.0.1, DNS:localhost) for every site database
    server, made once with openssl under .lab/site-tls: the flips are tested over verified TLS."""
    import subprocess

    folder = lab.state / "site-tls"
    files = {"ca": folder / "ca.pem", "cert": folder / "server.pem", "key": folder / "server-key.pem"}
    with lab._lock:  # pylint: disable=protected-access
        if all(path.exists() for path in files.values()):
            return files
        folder.mkdir(parents=True, exist_ok=True)
        ext = folder / "san.ext"
        ext.write_text("subjectAltName = IP:127.0.0.1, DNS:localhost\n")

        def openssl(*args):
            subprocess.run(["openssl"] + list(args), check=True, capture_output=True, cwd=folder)

        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj", "/CN=cloudshift lab CA",
                "-keyout", "ca-key.pem", "-out", "ca.pem")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "server-key.pem",
                "-out", "server.csr")
        openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
                "-days", "3650", "-extfile", "san.ext", "-out", "server.pem")
    return files


def install_tls(lab, data_dir: Path, owner: str) -> dict:
    """The lab's certificate and key copied where ``owner`` (mysql, postgres) reads them, key mode 0600."""
    import shutil

    target = data_dir / "tls"
    target.mkdir(parents=True, exist_ok=True)
    placed = {}
    for name, path in site_tls(lab).items():
        placed[name] = target / path.name
        shutil.copyfile(path, placed[name])
        shutil.chown(placed[name], owner, owner)
        placed[name].chmod(0o600 if name == "key" else 0o644)
    shutil.chown(target, owner, owner)
    return placed


def site_file(lab) -> Path:
    return lab.state / "site.json"


def _update_site_file(lab, key: str, value: dict) -> None:
    with lab._lock:  # pylint: disable=protected-access
        path = site_file(lab)
        data = json.loads(path.read_text()) if path.exists() else {}
        data[key] = value
        write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class SiteMariaDB(MariaDB):
    kind = "site-mariadb"
    tier = 0
    debian_packages = MariaDB.debian_packages + ("openssl",)

    @property
    def server_id(self) -> int:
        return self.port

    def options(self) -> list[str]:
        # binary logs with GTIDs (the parent's config has none), a smaller buffer pool
        kept = [line for line in super().options()
                if line and not line.startswith(("skip-log-bin", "innodb_buffer_pool_size", "max_connections"))]
        return kept + [
            f"server_id = {self.server_id}",
            f"log_bin = {self.data_dir / 'binlog'}",
            "log_slave_updates = 1",
            "binlog_format = ROW",
            "gtid_strict_mode = 1",
            "gtid_domain_id = 0",
            "innodb_buffer_pool_size = 64M",
            "max_connections = 500",
            # TLS offered (not required: the lab's own clients stay on plain loopback for speed)
            f"ssl_ca = {self.data_dir / 'tls' / 'ca.pem'}",
            f"ssl_cert = {self.data_dir / 'tls' / 'server.pem'}",
            f"ssl_key = {self.data_dir / 'tls' / 'server-key.pem'}",
            "",
            # where db_replica_promote's fence_file goes (read_only = ON for an old primary)
            f"!includedir {self.data_dir / 'conf.d'}",
            "",
        ]

    def prepare(self) -> None:
        # the configuration names both: they exist before the server's first start (mariadb-install-db)
        install_tls(self.lab, self.data_dir, "mysql")
        (self.data_dir / "conf.d").mkdir(parents=True, exist_ok=True)
        super().prepare()

    def password(self, user: str = "admin") -> str:
        return self.lab.secret("site", user)

    def ready_hook(self) -> None:
        admin, repl, app = (self.password(u).replace("'", "''") for u in ("admin", "repl", "app"))
        # Written to the binary log would make these "errant" transactions on a replica: keep them out.
        self.sql("SET SESSION sql_log_bin = 0;\n"
                 "CREATE DATABASE IF NOT EXISTS app;\n"
                 f"CREATE USER IF NOT EXISTS 'admin'@'{HOST}' IDENTIFIED BY '{admin}';\n"
                 f"GRANT ALL PRIVILEGES ON *.* TO 'admin'@'{HOST}' WITH GRANT OPTION;\n"
                 f"CREATE USER IF NOT EXISTS 'repl'@'{HOST}' IDENTIFIED BY '{repl}';\n"
                 f"GRANT REPLICATION SLAVE, REPLICATION SLAVE ADMIN ON *.* TO 'repl'@'{HOST}';\n"
                 f"CREATE USER IF NOT EXISTS 'app'@'{HOST}' IDENTIFIED BY '{app}';\n"
                 f"GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON app.* TO 'app'@'{HOST}';\n")
        _update_site_file(self.lab, self.name, {
            "host": HOST, "port": self.port, "socket": str(self.socket_path), "server_id": self.server_id,
            "users": {u: self.password(u) for u in ("admin", "repl", "app")},
            "tls_ca": str(site_tls(self.lab)["ca"]),
            "fence_file": str(self.data_dir / "conf.d" / "99-cloudshift-fence.cnf"),
        })


class SiteWeb(Service):
    """A web backend that answers with its name ("old" or "new")."""

    kind = "site-web"
    tier = 0

    @property
    def label(self) -> str:
        return self.name.rsplit("-", 1)[1]

    def prepare(self) -> None:
        super().prepare()
        (self.data_dir / "www").mkdir(parents=True, exist_ok=True)
        write_if_changed(self.data_dir / "www" / "index.html", f"{self.label}\n")

    def command(self) -> list[str]:
        return [sys.executable, "-m", "http.server", "--bind", HOST, "--directory",
                str(self.data_dir / "www"), str(self.port)]

    def ready_hook(self) -> None:
        _update_site_file(self.lab, self.name, {"url": self.url})


class SiteHAProxy(Service):
    kind = "site-haproxy"
    debian_packages = ("haproxy",)
    tier = 1  # after the backends, so that its first health checks find them

    @property
    def health_url(self):
        return None  # a TCP connect to the web frontend

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "admin.sock"

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "haproxy.cfg"

    def prepare(self) -> None:
        super().prepare()
        data = self.data_dir
        (data / "maintenance.acl").touch()
        state = data / "server-state"
        if not state.exists():
            state.write_text("")
        db = DB_PORTS
        write_if_changed(self.conf_path, "\n".join([
            "global",
            f"    stats socket {self.socket_path} mode 600 level admin expose-fd listeners",
            f"    server-state-file {state}",
            f"    pidfile {data / 'haproxy.pid'}",
            "    maxconn 2000",
            "",
            "defaults",
            "    timeout connect 2s",
            "    timeout client 60s",
            "    timeout server 60s",
            "    load-server-state-from-file global",
            "",
            "frontend web",
            f"    bind {HOST}:{self.port}",
            "    mode http",
            f"    acl maintenance path_beg -f {data / 'maintenance.acl'}",
            '    http-request return status 503 content-type text/plain string "maintenance" if maintenance',
            "    default_backend web",
            "",
            "backend web",
            "    mode http",
            f"    server old {HOST}:{WEB_PORTS['site-web-old']} check inter 1s",
            f"    server new {HOST}:{WEB_PORTS['site-web-new']} check inter 1s disabled",
            "",
            "frontend db",
            f"    bind {HOST}:{HAPROXY_PORTS['db']}",
            "    mode tcp",
            "    default_backend db",
            "",
            "backend db",
            "    mode tcp",
            f"    server old {HOST}:{db['site-db0']}",
            f"    server new {HOST}:{db['site-db1']} disabled",
            "",
            "frontend pg",
            f"    bind {HOST}:{HAPROXY_PORTS['pg']}",
            "    mode tcp",
            "    default_backend pg",
            "",
            "backend pg",
            "    mode tcp",
            f"    server old {HOST}:{PG_PORTS['site-pg0']}",
            f"    server new {HOST}:{PG_PORTS['site-pg1']} disabled",
            "",
        ]))

    def command(self) -> list[str]:
        return ["haproxy", "-db", "-f", str(self.conf_path)]

    def ready_hook(self) -> None:
        _update_site_file(self.lab, "site-haproxy", {
            "socket": str(self.socket_path), "config": str(self.conf_path),
            "server_state_file": str(self.data_dir / "server-state"),
            "maintenance_acl": str(self.data_dir / "maintenance.acl"),
            "web_url": self.url, "db": {"host": HOST, "port": HAPROXY_PORTS["db"]},
            "pg": {"host": HOST, "port": HAPROXY_PORTS["pg"]},
        })


PG_USERS = ("admin", "repl", "app")


def _pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))
    if not found:
        from .base import LabError

        raise LabError("PostgreSQL is not installed (Debian package postgresql)")
    return found[-1].parent


class SitePostgres(Service):
    """PostgreSQL as a plain process run by the postgres user: site-pg0 the primary, site-pg1 and
    site-pg2 its streaming standbys (pg_basebackup -R; the flip promotes site-pg1 and repoints
    site-pg2). Users admin (superuser), repl (replication), app."""

    kind = "site-postgres"
    debian_packages = ("postgresql", "openssl")
    stop_timeout = 20.0

    @property
    def tier(self) -> int:  # the standby copies the primary: it starts after it
        return 0 if self.name == "site-pg0" else 1

    @property
    def requires(self) -> list[Service]:
        return [] if self.name == "site-pg0" else [self.lab.site_pg0]

    @property
    def health_url(self):
        return None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    @property
    def sockdir(self) -> Path:
        return self.data_dir / "sock"

    def password(self, user: str) -> str:
        return self.lab.secret("site-pg", user)

    def as_postgres(self, args: list[str], env: dict | None = None) -> None:
        self.run_tool(["runuser", "-u", "postgres", "--"] + args, env=env)

    def prepare(self) -> None:
        import shutil

        super().prepare()
        for path in (self.data_dir, self.sockdir):
            path.mkdir(parents=True, exist_ok=True)
            shutil.chown(path, "postgres", "postgres")
        install_tls(self.lab, self.data_dir, "postgres")
        if (self.pgdata / "PG_VERSION").exists():
            return
        if self.pgdata.exists():
            shutil.rmtree(self.pgdata)
        if self.name == "site-pg0":
            pwfile = self.data_dir / "pwfile"
            write_private(pwfile, self.password("admin") + "\n")
            shutil.chown(pwfile, "postgres", "postgres")
            self.as_postgres([str(_pg_bin() / "initdb"), "-D", str(self.pgdata), "-U", "admin",
                              f"--pwfile={pwfile}", "--auth-local=scram-sha-256", "--auth-host=scram-sha-256"])
            pwfile.unlink()
        else:
            primary = self.lab.site_pg0
            self.as_postgres([str(_pg_bin() / "pg_basebackup"), "-h", HOST, "-p", str(primary.port), "-U", "repl",
                              "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast"],
                             env={"PGPASSWORD": primary.password("repl")})

    def command(self) -> list[str]:
        return ["runuser", "-u", "postgres", "--", str(_pg_bin() / "postgres"), "-D", str(self.pgdata),
                "-c", f"port={self.port}", "-c", f"listen_addresses={HOST}",
                "-c", f"unix_socket_directories={self.sockdir}", "-c", "wal_level=replica",
                "-c", "max_wal_senders=10", "-c", "hot_standby=on", "-c", "fsync=off",
                "-c", "wal_receiver_status_interval=1s",
                # standbys copied at the same time (pg_basebackup -X stream), or reconnecting after a flip, find
                # the WAL they need: without it a checkpoint of one base backup recycled the other's segment
                "-c", "wal_keep_size=512MB",
                # TLS offered (standbys use it: libpq's sslmode defaults to prefer)
                "-c", "ssl=on", "-c", f"ssl_cert_file={self.data_dir / 'tls' / 'server.pem'}",
                "-c", f"ssl_key_file={self.data_dir / 'tls' / 'server-key.pem'}",
                # a standby whose primary was stopped retries every 5 s by default: a flip resumed
                # after an interruption restarts the primary and waits for its standby
                "-c", "wal_retrieve_retry_interval=200ms", "-c", f"cluster_name={self.name}"]

    def psql(self, sql: str) -> None:
        import subprocess

        env = dict(self.environment(), PGPASSWORD=self.password("admin"))
        psql = "/usr/bin/psql"
        result = subprocess.run([psql, "-h", HOST, "-p", str(self.port), "-U", "admin", "-d", "postgres",
                                 "-v", "ON_ERROR_STOP=1", "-q", "-c", sql], capture_output=True, text=True,
                                check=False, env=env)
        if result.returncode != 0:
            from .base import LabError

            raise LabError(f"{self.name}: psql failed: {result.stderr.strip()}")

    def ready_hook(self) -> None:
        if self.name == "site-pg0":
            repl, app = self.password("repl").replace("'", "''"), self.password("app").replace("'", "''")
            self.psql("DO $$ BEGIN "
                      "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'repl') THEN "
                      f"CREATE ROLE repl LOGIN REPLICATION PASSWORD '{repl}'; END IF; "
                      "IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app') THEN "
                      f"CREATE ROLE app LOGIN PASSWORD '{app}'; END IF; END $$;")
            self.psql("SELECT 1")  # connectivity
            import subprocess

            env = dict(self.environment(), PGPASSWORD=self.password("admin"))
            exists = subprocess.run(["/usr/bin/psql", "-h", HOST, "-p", str(self.port), "-U", "admin", "-d",
                                     "postgres", "-tAc", "SELECT 1 FROM pg_database WHERE datname = 'app'"],
                                    capture_output=True, text=True, check=False, env=env).stdout.strip()
            if exists != "1":
                self.psql("CREATE DATABASE app OWNER app")
        _update_site_file(self.lab, self.name, {
            "host": HOST, "port": self.port, "pgdata": str(self.pgdata), "bin": str(_pg_bin()),
            "tls_ca": str(site_tls(self.lab)["ca"]),
            "users": {user: self.password(user) for user in PG_USERS},
        })


DNS_PORT = 13553
DNS_ZONE = "site.test"
DNS_KEY = "cloudshift-lab"


class SiteDNS(Service):
    """Knot DNS, authoritative for site.test, accepting RFC 2136 updates signed with a TSIG key
    (hmac-sha256). Updates survive restarts (zonefile-load: difference, journal-content: all)."""

    kind = "site-dns"
    debian_packages = ("knot", "knot-dnsutils")

    @property
    def health_url(self):
        return None

    def key_secret(self) -> str:
        import base64
        import hashlib

        return base64.b64encode(hashlib.sha256(self.lab.secret("site", "dns-tsig").encode()).digest()).decode()

    def prepare(self) -> None:
        super().prepare()
        data = self.data_dir
        for sub in ("run", "zones", "db"):
            (data / sub).mkdir(parents=True, exist_ok=True)
        zonefile = data / "zones" / f"{DNS_ZONE}.zone"
        if not zonefile.exists():
            zonefile.write_text("\n".join([
                f"$ORIGIN {DNS_ZONE}.",
                "$TTL 3600",
                f"@ 3600 IN SOA ns.{DNS_ZONE}. hostmaster.{DNS_ZONE}. 1 3600 600 86400 60",
                f"@ 3600 IN NS ns.{DNS_ZONE}.",
                "ns 3600 IN A 127.0.0.1",
                "www 3600 IN A 127.0.0.10",
                "db 3600 IN A 127.0.0.20",
                "",
            ]))
        write_if_changed(data / "knot.conf", "\n".join([
            "server:",
            f"    rundir: {data / 'run'}",
            f"    listen: {HOST}@{self.port}",
            "log:",
            "  - target: stdout",
            "    any: info",
            "database:",
            f"    storage: {data / 'db'}",
            "key:",
            f"  - id: {DNS_KEY}",
            "    algorithm: hmac-sha256",
            f"    secret: {self.key_secret()}",
            "acl:",
            "  - id: update",
            f"    key: {DNS_KEY}",
            "    action: update",
            "template:",
            "  - id: default",
            f"    storage: {data / 'zones'}",
            "    zonefile-load: difference",
            "    journal-content: all",
            "    zonefile-sync: -1",
            "zone:",
            f"  - domain: {DNS_ZONE}",
            "    acl: update",
            "",
        ]))

    def command(self) -> list[str]:
        return ["knotd", "-c", str(self.data_dir / "knot.conf")]

    def ready_hook(self) -> None:
        _update_site_file(self.lab, "site-dns", {
            "server": HOST, "port": self.port, "zone": DNS_ZONE, "key_name": DNS_KEY,
            "key_secret": self.key_secret(), "key_algorithm": "hmac-sha256",
        })


FASTLY_PORT = 13580


class SiteFastly(Service):
    """A local stand-in for Fastly's API (lab/fastly/standin.py): service "site" whose backends
    traffic_switch changes through versions. Not Fastly: it checks the request sequence."""

    kind = "site-fastly"

    @property
    def health_url(self):
        return None

    def token(self) -> str:
        return self.lab.secret("site", "fastly-token")

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env["FASTLY_STANDIN_TOKEN"] = self.token()
        return env

    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve().parent.parent / "fastly" / "standin.py"),
                "--host", HOST, "--port", str(self.port), "--state", str(self.data_dir / "state.json")]

    def ready_hook(self) -> None:
        _update_site_file(self.lab, "site-fastly", {"url": self.url, "service_id": "site", "token": self.token()})
