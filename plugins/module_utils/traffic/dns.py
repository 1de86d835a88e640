# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""DNS records through RFC 2136 dynamic updates, signed with TSIG (dnspython).

Reads ask the zone's server itself (no resolver, no cache), so a change is seen at once.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.cloudshift.migrate.plugins.module_utils.base import MigrateError

try:
    import dns.exception
    import dns.message
    import dns.name
    import dns.query
    import dns.rcode
    import dns.rdatatype
    import dns.tsig
    import dns.tsigkeyring
    import dns.update

    HAS_DNSPYTHON = True
except ImportError:
    HAS_DNSPYTHON = False

ALGORITHMS = ("hmac-sha256", "hmac-sha384", "hmac-sha512", "hmac-sha224", "hmac-sha1", "hmac-md5")


class DNS:
    def __init__(self, server, port, zone, key_name=None, key_secret=None, key_algorithm="hmac-sha256", timeout=5.0):
        if not HAS_DNSPYTHON:
            raise MigrateError("dnspython is needed for the rfc2136 provider")
        self.server, self.port, self.timeout = server, int(port), timeout
        self.zone = dns.name.from_text(zone)
        self.keyring = None
        self.algorithm = None
        if key_name:
            try:
                self.keyring = dns.tsigkeyring.from_text({key_name: key_secret})
            except Exception:  # pylint: disable=broad-except
                raise MigrateError("key_secret is not a valid base64 TSIG secret")
            self.algorithm = dns.name.from_text(key_algorithm)

    def fqdn(self, name):
        absolute = dns.name.from_text(name, origin=self.zone)
        if not absolute.is_subdomain(self.zone):
            raise MigrateError("%s is not in the zone %s" % (name, self.zone))
        return absolute

    def check_key(self):
        """A signed query of the zone's SOA: a key the server does not take fails here, before any change."""
        query = dns.message.make_query(self.zone, dns.rdatatype.SOA)
        if self.keyring:
            query.use_tsig(self.keyring, algorithm=self.algorithm)
        try:
            response = dns.query.udp(query, self.server, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as exc:
            raise MigrateError("%s:%s does not take the TSIG key: %s" % (self.server, self.port, exc))
        except (dns.exception.DNSException, OSError) as exc:
            raise MigrateError("cannot query %s:%s: %s" % (self.server, self.port, exc))
        if not response.answer:
            raise MigrateError("%s:%s is not authoritative for %s (%s)" % (
                self.server, self.port, self.zone, dns.rcode.to_text(response.rcode())))

    def current(self, name, rtype):
        """(ttl, sorted values) of the record at the zone's server; (None, []) when absent."""
        query = dns.message.make_query(self.fqdn(name), dns.rdatatype.from_text(rtype))
        query.flags &= ~0x0100  # no recursion: the authoritative answer
        try:
            response = dns.query.udp(query, self.server, port=self.port, timeout=self.timeout)
        except (dns.exception.DNSException, OSError) as exc:
            raise MigrateError("cannot query %s:%s for %s: %s" % (self.server, self.port, name, exc))
        rcode = response.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            raise MigrateError("%s:%s answered %s for %s" % (self.server, self.port, dns.rcode.to_text(rcode), name))
        for rrset in response.answer:
            if rrset.rdtype == dns.rdatatype.from_text(rtype):
                return rrset.ttl, sorted(rdata.to_text() for rdata in rrset)
        return None, []

    def replace(self, name, rtype, ttl, values):
        update = dns.update.UpdateMessage(self.zone, keyring=self.keyring, keyalgorithm=self.algorithm)
        update.replace(self.fqdn(name), int(ttl), rtype, *values)
        self._send(update, name)

    def delete(self, name, rtype):
        update = dns.update.UpdateMessage(self.zone, keyring=self.keyring, keyalgorithm=self.algorithm)
        update.delete(self.fqdn(name), rtype)
        self._send(update, name)

    def _send(self, update, name):
        try:
            response = dns.query.tcp(update, self.server, port=self.port, timeout=self.timeout)
        except dns.tsig.PeerError as exc:
            raise MigrateError("%s:%s refused the key for %s: %s" % (self.server, self.port, name, exc))
        except (dns.exception.DNSException, OSError) as exc:
            raise MigrateError("cannot update %s at %s:%s: %s" % (name, self.server, self.port, exc))
        rcode = response.rcode()
        if rcode != dns.rcode.NOERROR:
            hint = " (a missing or wrong TSIG key?)" if rcode in (dns.rcode.NOTAUTH, dns.rcode.REFUSED) else ""
            raise MigrateError("%s:%s refused the update of %s: %s%s" % (
                self.server, self.port, name, dns.rcode.to_text(rcode), hint))
