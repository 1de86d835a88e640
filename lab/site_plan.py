"""Write .lab/site-plan.json: the lab's site as a migrate_site definition (from .lab/site.json).

    python3 lab/site_plan.py        # then: ansible-playbook cloudshift.migrate.migrate_site -e @.lab/site-plan.json -e phase=...
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def plan(lab: dict) -> dict:
    def node(name):
        return {"name": name, "host": lab[name]["host"], "port": lab[name]["port"]}

    users = lab["site-db0"]["users"]
    proxy, dns, cdn = lab["site-haproxy"], lab["site-dns"], lab["site-fastly"]
    return {"site": {
        "database": {"engine": "mariadb", "old_primary": node("site-db0"), "new_primary": node("site-db1"),
                     "replicas": [node("site-db2")], "login_user": "admin", "login_password": users["admin"],
                     "replication_user": "repl", "replication_password": users["repl"], "max_lag": 5},
        "haproxy": {"socket": proxy["socket"], "db_backend": "db", "web_backend": "web", "old_server": "old",
                    "new_server": "new", "state_file": proxy["server_state_file"],
                    "maintenance_acl": proxy["maintenance_acl"]},
        "fastly": {"api_url": cdn["url"], "api_token": cdn["token"], "service_id": cdn["service_id"],
                   "backends": {"origin": {"old": lab["site-web-old"]["url"].split("//")[1],
                                           "new": lab["site-web-new"]["url"].split("//")[1]}}},
        "dns": {"server": dns["server"], "port": dns["port"], "zone": dns["zone"], "key_name": dns["key_name"],
                "key_secret": dns["key_secret"], "ttl_low": 60,
                "records": [{"name": "www", "old": ["127.0.0.10"], "new": ["127.0.0.11"]},
                            {"name": "db", "old": ["127.0.0.20"], "new": ["127.0.0.21"]}]},
        "test_urls": [lab["site-web-new"]["url"] + "/"],
    }}


def main() -> int:
    lab = json.loads((ROOT / ".lab" / "site.json").read_text())
    target = ROOT / ".lab" / "site-plan.json"
    fd = os.open(str(target), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(plan(lab), handle, indent=2)
    print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
