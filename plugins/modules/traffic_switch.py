#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: traffic_switch
short_description: Switch a load balancer's backends to the new site, or back, without a reload
version_added: 0.1.0
description:
  - HAProxy through its runtime API (the admin socket, C(level admin)) - the server to serve is made ready, the others
    put in maintenance with their sessions cut, server addresses changed, a maintenance page shown or hidden
    through an ACL file. No reload; the change is written to HAProxy's server-state file (O(state_file)) so that a
    later reload keeps it.
  - DNS through RFC 2136 dynamic updates signed with TSIG (O(provider=rfc2136)) - each record of O(records) gets its
    values and TTL; only TTLs (to lower them ahead of a move, and restore them after) when no values are given. The
    previous values and TTLs are returned and recorded in the ledger, so that a restore knows them.
  - Idempotent (only what differs is changed) and check mode (the plan, from the current state).
  - Fastly (O(provider=fastly)) - the active version of the service is cloned, the backends of O(backends) get
    their new addresses in the clone, the clone is validated and activated; the previous version is returned, and
    activating it (O(activate_version)) is the rollback. With O(stage), the clone is validated but not activated (a
    staged version, prepared ahead of the flip for review); a later switch to the same backends finds it and only
    validates and activates it. Built on Fastly's documented API and tested against a local stand-in that checks the
    request sequence - B(not run against Fastly itself).
author:
  - cloudshift.migrate engineers (@cloudshift)
options:
  provider:
    description: What carries the traffic - V(haproxy) (runtime API), V(rfc2136) (DNS updates) or V(fastly) (CDN).
    type: str
    choices: [haproxy, rfc2136, fastly]
    default: haproxy
  api_url:
    description: Fastly's API.
    type: str
    default: https://api.fastly.com
  api_token:
    description: A Fastly API token (default from E(FASTLY_API_TOKEN)).
    type: str
  service_id:
    description: The Fastly service. Required with O(provider=fastly).
    type: str
  backends:
    description: Fastly backend name -> C(address) or C(address:port) in the new version.
    type: dict
    default: {}
  activate_version:
    description: Activate this version of the Fastly service (the rollback to the RV(previous_version) of a switch).
    type: int
  stage:
    description:
      - With O(provider=fastly) and O(backends), prepare the switch without making it - a validated clone of the active
        version with the new backends, left inactive. Idempotent - a staged version with these backends is kept.
    type: bool
    default: false
  socket:
    description: HAProxy's admin socket. Required with O(provider=haproxy).
    type: path
  server:
    description: The DNS server that takes updates for O(zone) (its address). Required with O(provider=rfc2136).
    type: str
  port:
    description: Its port.
    type: int
    default: 53
  zone:
    description: The DNS zone the records are in.
    type: str
  key_name:
    description: The TSIG key's name.
    type: str
  key_secret:
    description: The TSIG key's secret (base64).
    type: str
  key_algorithm:
    description: The TSIG algorithm.
    type: str
    choices: [hmac-sha256, hmac-sha384, hmac-sha512, hmac-sha224, hmac-sha1, hmac-md5]
    default: hmac-sha256
  records:
    description:
      - DNS records to set - each a dict with C(name) (relative to O(zone), or absolute), C(type) (default C(A)),
        C(values) (a list; absent means keep the current values) and C(ttl) (absent means keep the current TTL, or
        300 for a new record).
    type: list
    elements: dict
    default: []
  backend:
    description: The backend to switch. Needed with O(activate), O(deactivate) or O(addresses).
    type: str
  activate:
    description: The server that serves after the switch (made C(ready)).
    type: str
  deactivate:
    description: Servers put in maintenance (their sessions are cut).
    type: list
    elements: str
    default: []
  addresses:
    description: Server -> C(address:port) to set (for example a server slot pointed at the new site).
    type: dict
    default: {}
  maintenance:
    description: Show (true) or hide (false) the maintenance page; unset leaves it as it is.
    type: bool
  maintenance_acl:
    description: The ACL file (as named in HAProxy's configuration) whose value switches the maintenance page.
    type: str
  maintenance_value:
    description: The value added to O(maintenance_acl) to show the page.
    type: str
    default: /
  state_file:
    description: HAProxy's C(server-state-file), written after a change so that a reload keeps it.
    type: path
extends_documentation_fragment:
  - cloudshift.migrate.ledger
  - cloudshift.migrate.attributes
"""

EXAMPLES = r"""
- name: Send the web traffic to the new site
  cloudshift.migrate.traffic_switch:
    socket: /run/haproxy/admin.sock
    backend: web
    activate: new
    deactivate: [old]
    state_file: /var/lib/haproxy/server-state

- name: Lower the TTLs a day ahead of the move
  cloudshift.migrate.traffic_switch:
    provider: rfc2136
    server: 192.0.2.53
    zone: example.com
    key_name: migration
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - {name: www, ttl: 60}
  register: lowered

- name: Point www at the new site
  cloudshift.migrate.traffic_switch:
    provider: rfc2136
    server: 192.0.2.53
    zone: example.com
    key_name: migration
    key_secret: "{{ vault_tsig_secret }}"
    records:
      - {name: www, type: A, values: [203.0.113.10], ttl: 60}

- name: Send the CDN to the new origin (rollback - activate the previous_version it returns)
  cloudshift.migrate.traffic_switch:
    provider: fastly
    service_id: SU1Z0isxPaozGVKXdv0eY
    api_token: "{{ vault_fastly_token }}"
    backends:
      origin: new-origin.example.com:443
  register: cdn

- name: Show the maintenance page
  cloudshift.migrate.traffic_switch:
    socket: /run/haproxy/admin.sock
    maintenance: true
    maintenance_acl: /etc/haproxy/maintenance.acl
"""

RETURN = r"""
actions:
  description: The runtime API commands run (in check mode, that would run).
  returned: always
  type: list
  elements: str
  sample: ["haproxy: set server web/new state ready", "haproxy: set server web/old state maint"]
servers:
  description: The backend's servers after the call - address, port, state (ready, maint, drain), up.
  returned: when O(backend) is given
  type: dict
version:
  description: With O(provider=fastly), the active version after the call (with O(stage), the staged version).
  returned: with O(provider=fastly)
  type: int
previous_version:
  description: With O(provider=fastly), the version that was active before (activate it to roll back).
  returned: with O(provider=fastly)
  type: int
staged:
  description: With O(stage), whether a staged version with the backends exists now (RV(version) is its number).
  returned: with O(stage)
  type: bool
records:
  description: With O(provider=rfc2136), each record's C(name), C(type), C(ttl), C(values) after the call and its
    C(previous) TTL and values.
  returned: with O(provider=rfc2136)
  type: list
  elements: dict
ledger_entries:
  description: The switch's entry (C(traffic_switch), with the commands run).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import env_fallback

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError, MigrateModule
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic import haproxy
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic.dns import ALGORITHMS, DNS
from ansible_collections.cloudshift.migrate.plugins.module_utils.traffic.fastly import Fastly


def fastly_differences(backends, wanted):
    """The wanted backends (name -> (address, port)) that ``backends`` (a version's) do not have."""
    return dict((name, (address, port)) for name, (address, port) in wanted.items()
                if backends.get(name, {}).get("address") != address
                or (port and int(backends.get(name, {}).get("port") or 0) != int(port)))


class TrafficSwitch(MigrateModule):
    argument_spec = dict(
        provider=dict(type="str", choices=["haproxy", "rfc2136", "fastly"], default="haproxy"),
        api_url=dict(type="str", default="https://api.fastly.com"),
        api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["FASTLY_API_TOKEN"])),
        service_id=dict(type="str"),
        backends=dict(type="dict", default={}),
        activate_version=dict(type="int"),
        stage=dict(type="bool", default=False),
        socket=dict(type="path"),
        server=dict(type="str"),
        port=dict(type="int", default=53),
        zone=dict(type="str"),
        key_name=dict(type="str", no_log=False),
        key_secret=dict(type="str", no_log=True),
        key_algorithm=dict(type="str", choices=list(ALGORITHMS), default="hmac-sha256"),
        records=dict(type="list", elements="dict", default=[]),
        backend=dict(type="str"),
        activate=dict(type="str"),
        deactivate=dict(type="list", elements="str", default=[]),
        addresses=dict(type="dict", default={}),
        maintenance=dict(type="bool"),
        maintenance_acl=dict(type="str"),
        maintenance_value=dict(type="str", default="/"),
        state_file=dict(type="path"),
    )

    module_kwargs = dict(required_if=[("provider", "haproxy", ["socket"]),
                                      ("provider", "rfc2136", ["server", "zone", "records"]),
                                      ("provider", "fastly", ["api_token", "service_id"])])

    def run(self):
        if self.params["stage"] and self.params["provider"] != "fastly":
            raise MigrateError("stage is for provider=fastly")
        if self.params["provider"] == "rfc2136":
            return self.run_dns()
        if self.params["provider"] == "fastly":
            return self.run_fastly()
        return self.run_haproxy()

    def run_dns(self):
        p = self.params
        wanted = []
        for index, record in enumerate(p["records"]):
            unknown = set(record) - set(["name", "type", "values", "ttl"])
            if unknown or not record.get("name"):
                raise MigrateError("records[%d] needs name (and may have type, values, ttl), not %s" % (
                    index, ", ".join(sorted(unknown)) or "nothing"))
            values = record.get("values")
            if values is not None and not isinstance(values, list):
                values = [values]
            ttl = record.get("ttl")
            if ttl is not None and (not str(ttl).isdigit() or int(ttl) > 2147483647):
                raise MigrateError("records[%d]: ttl must be a number of seconds, not %r" % (index, ttl))
            wanted.append(dict(name=record["name"], type=str(record.get("type") or "A").upper(),
                               values=None if values is None else [str(v) for v in values],
                               ttl=None if ttl is None else int(ttl)))
        zone = DNS(p["server"], p["port"], p["zone"], p.get("key_name"), p.get("key_secret"), p["key_algorithm"])
        zone.check_key()
        results = []
        for record in wanted:  # read everything first: bad names fail before any change
            ttl, values = zone.current(record["name"], record["type"])
            record["previous"] = dict(ttl=ttl, values=values)
        for record in wanted:
            previous = record["previous"]
            values = sorted(record["values"]) if record["values"] is not None else previous["values"]
            ttl = record["ttl"] if record["ttl"] is not None else (previous["ttl"] or 300)
            if not values:
                raise MigrateError("%s %s does not exist: give its values" % (record["name"], record["type"]))
            if (ttl, values) != (previous["ttl"], previous["values"]):
                if self.plan("rfc2136: %s %s %s ttl %s (was %s ttl %s)" % (
                        record["name"], record["type"], " ".join(values), ttl, " ".join(previous["values"]) or "-",
                        previous["ttl"])):
                    zone.replace(record["name"], record["type"], ttl, values)
                    self.record("dns_record", "%s/%s" % (zone.fqdn(record["name"]).to_text(), record["type"]),
                                destination_id=" ".join(values), phase="flip", status="done",
                                data=dict(ttl=ttl, previous_ttl=previous["ttl"], previous_values=previous["values"]))
            results.append(dict(name=record["name"], type=record["type"], ttl=ttl, values=values,
                                previous=previous))
        return dict(records=results)

    def run_fastly(self):
        p = self.params
        if bool(p["backends"]) == (p["activate_version"] is not None):
            raise MigrateError("give backends (a switch) or activate_version (a rollback), one of them")
        if p["stage"] and not p["backends"]:
            raise MigrateError("stage needs backends")
        cdn = Fastly(p["api_url"], p["api_token"], p["service_id"])
        details = cdn.details()
        active = int(details["active_version"])
        if p["activate_version"] is not None:
            if p["activate_version"] != active and self.plan("fastly: activate version %d of %s (was %d)" % (
                    p["activate_version"], p["service_id"], active)):
                cdn.activate(p["activate_version"])
            changed_to = p["activate_version"] if not self.check_mode else active
            self.record_fastly(active, p["activate_version"])
            return dict(version=changed_to, previous_version=active)
        current = cdn.backends(active)
        wanted = {}
        for name, target in sorted(p["backends"].items()):
            if name not in current:
                raise MigrateError("Fastly service %s has no backend %s in version %d (it has %s)" % (
                    p["service_id"], name, active, ", ".join(sorted(current))))
            address, _sep, port = str(target).partition(":")
            if port and not port.isdigit():
                raise MigrateError("backends: %s must be address or address:port, not %r" % (name, target))
            wanted[name] = (address, port)
        missing = fastly_differences(current, wanted)
        if not missing:
            return dict(version=active, previous_version=active)
        draft = cdn.draft(details)
        if draft is not None and fastly_differences(cdn.backends(draft), wanted):
            draft = None  # a draft of something else: leave it alone, clone afresh
        if p["stage"]:
            if draft is not None:
                return dict(version=draft, previous_version=active, staged=True)
            for name, (address, port) in sorted(missing.items()):
                self.plan("fastly: backend %s -> %s in a clone of version %d" % (
                    name, address + (":" + port if port else ""), active))
            if not self.plan("fastly: validate the clone and leave it staged (version %d stays active)" % active):
                return dict(version=active, previous_version=active, staged=False)
            version = self.fastly_clone(cdn, active, missing)
            return dict(version=version, previous_version=active, staged=True)
        if draft is not None:
            if not self.plan("fastly: validate and activate staged version %d (version %d stays for a rollback)" % (
                    draft, active)):
                return dict(version=active, previous_version=active)
            cdn.validate(draft)
            cdn.activate(draft)
            self.record_fastly(active, draft)
            return dict(version=draft, previous_version=active)
        for name, (address, port) in sorted(missing.items()):
            self.plan("fastly: backend %s -> %s in a clone of version %d" % (name, address + (":" + port if port else ""), active))
        if not self.plan("fastly: validate and activate the clone (version %d stays for a rollback)" % active):
            return dict(version=active, previous_version=active)
        version = self.fastly_clone(cdn, active, missing)
        cdn.activate(version)
        self.record_fastly(active, version)
        return dict(version=version, previous_version=active)

    @staticmethod
    def fastly_clone(cdn, active, changes):
        version = cdn.clone(active)
        for name, (address, port) in sorted(changes.items()):
            cdn.set_backend(version, name, address, port)
        cdn.validate(version)
        return version

    def record_fastly(self, previous, version):
        if not self.check_mode and previous != version:
            self.record("traffic_switch", "fastly:%s" % self.params["service_id"], destination_id=str(version),
                        phase="flip", status="done", data=dict(previous_version=previous))

    def run_haproxy(self):
        p = self.params
        if (p["activate"] or p["deactivate"] or p["addresses"]) and not p["backend"]:
            raise MigrateError("activate, deactivate and addresses need backend")
        if p["maintenance"] is not None and not p["maintenance_acl"]:
            raise MigrateError("maintenance needs maintenance_acl")
        if p["activate"] and p["activate"] in p["deactivate"]:
            raise MigrateError("%s cannot be activated and deactivated at once" % p["activate"])
        # names go into runtime API lines: all of them are checked before the first is sent
        haproxy.check_names(backend=p["backend"], server=[p["activate"]] + p["deactivate"] + list(p["addresses"]),
                            address=[str(a) for a in p["addresses"].values()], maintenance_acl=p["maintenance_acl"],
                            maintenance_value=p["maintenance_value"] if p["maintenance"] is not None else None)
        proxy = haproxy.HAProxy(p["socket"])
        log = []
        servers = proxy.servers(p["backend"]) if p["backend"] else {}
        unknown = [name for name in [p["activate"]] + p["deactivate"] + list(p["addresses"]) if name and name not in servers]
        if unknown:
            raise MigrateError("backend %s has no server %s (it has %s)" % (p["backend"], ", ".join(unknown),
                                                                            ", ".join(sorted(servers))))
        for name, address in sorted(p["addresses"].items()):
            host, _sep, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise MigrateError("addresses: %s must be address:port, not %r" % (name, address))
            if (servers[name]["addr"], servers[name]["port"]) != (host, int(port)):
                if self.plan("haproxy: set server %s/%s addr %s port %s" % (p["backend"], name, host, port)):
                    proxy.set_addr(p["backend"], name, host, port)
        if p["activate"] or p["deactivate"]:
            planned = [name for name in p["deactivate"] if servers[name]["state"] != "maint"]
            if p["activate"] and servers[p["activate"]]["state"] != "ready":
                planned.append(p["activate"])
            if planned:
                if self.check_mode:
                    for name in planned:
                        self.plan("haproxy: set server %s/%s state %s" % (
                            p["backend"], name, "ready" if name == p["activate"] else "maint"))
                else:
                    activate = p["activate"] or None
                    if activate is None:
                        for name in p["deactivate"]:
                            if servers[name]["state"] != "maint":
                                log.append("haproxy: set server %s/%s state maint" % (p["backend"], name))
                                proxy.set_state(p["backend"], name, "maint")
                                proxy.shutdown_sessions(p["backend"], name)
                    else:
                        haproxy.switch(proxy, p["backend"], activate, p["deactivate"], log)
        if p["maintenance"] is not None:
            present = p["maintenance_value"] in proxy.acl_values(p["maintenance_acl"])
            if present != p["maintenance"]:
                verb = "add" if p["maintenance"] else "del"
                if self.plan("haproxy: %s acl %s %s" % (verb, p["maintenance_acl"], p["maintenance_value"])):
                    haproxy.maintenance(proxy, p["maintenance_acl"], p["maintenance_value"], p["maintenance"], [])
        if log:
            self.actions.extend(log)
            self.changed = True
        if self.changed and not self.check_mode:
            if p["state_file"]:
                proxy.save_state(p["state_file"])
            self.record("traffic_switch", "%s:%s" % (p["provider"], p["backend"] or p["maintenance_acl"]),
                        destination_id=p["activate"], phase="flip", status="done",
                        data=dict(deactivated=p["deactivate"], maintenance=p["maintenance"], commands=list(self.actions)))
        result = {}
        if p["backend"]:
            result["servers"] = proxy.servers(p["backend"])
        return result


def main():
    TrafficSwitch.main()


if __name__ == "__main__":
    main()
