"""MariaDB (Debian's mariadb-server) as a plain process, shared by both clouds.

Nova, Placement, Cinder and Neutron need a real database server (SQLite gives
"database is locked" under Nova). Each cloud gets its own databases, named
<cloud>_<name> (e.g. source_nova_api), and all services log in as the user
"lab" (password: secret lab/mariadb). Durability is traded for speed: this is
a throw-away test database.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from .base import HOST, LabError, Service, write_if_changed

USER = "lab"


class MariaDB(Service):
    kind = "mariadb"
    debian_packages = ("mariadb-server", "mariadb-client")
    tier = 0
    stop_timeout = 30.0

    @property
    def health_url(self):
        return None  # a TCP connect

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "mysqld.sock"

    @property
    def conf_path(self) -> Path:
        return self.data_dir / "my.cnf"

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "db"

    def password(self) -> str:
        return self.lab.secret("lab", "mariadb")

    def sqlalchemy_url(self, database: str) -> str:
        return (f"mysql+pymysql://{USER}:{self.password()}@{HOST}:{self.port}/"
                f"{database}?charset=utf8")

    def options(self) -> list[str]:
        """The [mysqld] section (subclasses change it: the site's servers keep binary logs)."""
        return [
            f"datadir = {self.db_dir}",
            f"socket = {self.socket_path}",
            f"pid-file = {self.data_dir / 'mysqld.pid'}",
            # its own temporary directory: servers installed side by side collide in /tmp
            f"tmpdir = {self.data_dir / 'tmp'}",
            f"port = {self.port}",
            f"bind-address = {HOST}",
            "skip-name-resolve",
            "skip-log-bin",
            "max_connections = 2000",
            "innodb_buffer_pool_size = 256M",
            "innodb_flush_log_at_trx_commit = 0",
            "innodb_doublewrite = 0",
            "sync_binlog = 0",
            "character-set-server = utf8mb4",
            "collation-server = utf8mb4_general_ci",
            "",
        ]

    def prepare(self) -> None:
        super().prepare()
        write_if_changed(self.conf_path, "\n".join(["[mysqld]"] + self.options()))
        (self.data_dir / "tmp").mkdir(exist_ok=True)
        for path in (self.data_dir, self.data_dir / "tmp"):
            shutil.chown(path, "mysql", "mysql")
        if not (self.db_dir / "mysql").exists():
            if self.db_dir.exists():
                shutil.rmtree(self.db_dir)
            self.run_tool(["mariadb-install-db", f"--defaults-file={self.conf_path}",
                           "--user=mysql", "--auth-root-authentication-method=socket",
                           "--skip-test-db"])

    def command(self) -> list[str]:
        return ["mariadbd", f"--defaults-file={self.conf_path}", "--user=mysql"]

    def sql(self, statements: str) -> str:
        """Run SQL as root over the socket; return its tab-separated output."""
        result = subprocess.run(
            ["mariadb", f"--socket={self.socket_path}", "-uroot", "--batch",
             "--skip-column-names"], input=statements, capture_output=True, text=True,
            check=False)
        if result.returncode != 0:
            raise LabError(f"{self.name}: SQL failed: {result.stderr.strip()}")
        return result.stdout

    def ready_hook(self) -> None:
        password = self.password().replace("'", "''")
        self.sql(f"CREATE USER IF NOT EXISTS '{USER}'@'{HOST}' IDENTIFIED BY '{password}';\n"
                 f"ALTER USER '{USER}'@'{HOST}' IDENTIFIED BY '{password}';\n"
                 f"GRANT ALL PRIVILEGES ON *.* TO '{USER}'@'{HOST}';\n")

    def create_databases(self, names: list[str]) -> None:
        self.sql("".join(f"CREATE DATABASE IF NOT EXISTS `{name}`;\n" for name in names))

    def drop_databases(self, names: list[str]) -> None:
        self.sql("".join(f"DROP DATABASE IF EXISTS `{name}`;\n" for name in names))
