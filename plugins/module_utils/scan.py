# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is on a live system: the work behind cloudshift.migrate.host_scan.

Every reader takes ``root`` (``/`` on a host; a directory in unit tests) and reads
files rather than running tools where the files say it all: dpkg's status and
file lists, systemd's ``*.wants`` links, /etc/passwd, /proc/net. A reader that
cannot work here (no /proc in a chroot, no ``ip``) says why in ``skipped``
instead of failing the scan. Contents never leave the host: files are reported
by metadata and sha256.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import glob
import grp
import gzip
import hashlib
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import threading

try:
    from concurrent.futures import ThreadPoolExecutor
except ImportError:  # pragma: no cover - Python 3 always has it
    ThreadPoolExecutor = None

CATEGORIES = ("os", "packages", "services", "ports", "users", "groups", "cron", "mounts", "addresses",
              "changed_files", "unowned_files")

# Services have their own category: their enablement links are not reported again as files.
DEFAULT_EXCLUDE = ("/etc/systemd/system/*.wants/*", "/etc/systemd/system/*.requires/*", "/etc/rc?.d/*",
                   "/etc/ld.so.cache", "/etc/.pwd.lock", "*/__pycache__/*")
PSEUDO_FILESYSTEMS = frozenset((
    "proc", "sysfs", "devpts", "devtmpfs", "tmpfs", "mqueue", "debugfs", "tracefs", "securityfs", "pstore",
    "bpf", "autofs", "hugetlbfs", "configfs", "fusectl", "binfmt_misc", "nsfs", "cgroup", "cgroup2", "rpc_pipefs",
    "efivarfs", "ramfs", "overlay-lower"))
CHUNK = 1024 * 1024


class ScanError(Exception):
    pass


class Skipped:
    """What a scan did not look at, and why (reported, never silent)."""

    def __init__(self):
        self.items = []
        self._lock = threading.Lock()

    def add(self, category, reason, path=None, count=None):
        item = dict(category=category, reason=reason)
        if path is not None:
            item["path"] = path
        if count is not None:
            item["count"] = count
        with self._lock:
            self.items.append(item)


def rooted(root, path):
    return os.path.join(root, path.lstrip("/")) if root not in ("", "/") else path


def shown_path(root, path):
    """The path as the scanned system sees it (``path`` lies under ``root``)."""
    return "/" + os.path.relpath(path, root) if root not in ("", "/") else path


def read_lines(path):
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace").splitlines()
    except (IOError, OSError):
        return None


def parse_key_values(lines):
    values = {}
    for line in lines or ():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip().strip("\"'")
    return values


# ---- os -------------------------------------------------------------------------------------------
def scan_os(root):
    release = parse_key_values(read_lines(rooted(root, "/etc/os-release")) or
                               read_lines(rooted(root, "/usr/lib/os-release")))
    uname = os.uname()
    hostname = (read_lines(rooted(root, "/etc/hostname")) or [""])[0].strip() or uname[1]
    return dict(id=release.get("ID"), version_id=release.get("VERSION_ID"), pretty_name=release.get("PRETTY_NAME"),
                kernel=uname[2], arch=uname[4], hostname=hostname)


# ---- packages -------------------------------------------------------------------------------------
def parse_dpkg_status(lines):
    """Yield one dict per stanza of /var/lib/dpkg/status (continuation lines joined to their field)."""
    stanza, field = {}, None
    for line in lines:
        if not line.strip():
            if stanza:
                yield stanza
            stanza, field = {}, None
        elif line[0] in " \t" and field:
            stanza[field] += "\n" + line.strip()
        elif ":" in line:
            field, value = line.split(":", 1)
            stanza[field] = value.strip()
    if stanza:
        yield stanza


def dpkg_installed(root):
    """name:arch -> stanza for every package whose state is installed (or half-configured)."""
    lines = read_lines(rooted(root, "/var/lib/dpkg/status"))
    if lines is None:
        return None
    installed = {}
    for stanza in parse_dpkg_status(lines):
        state = stanza.get("Status", "").split()
        if len(state) == 3 and state[2] in ("installed", "half-configured", "unpacked", "triggers-pending",
                                            "triggers-awaited"):
            installed[stanza["Package"]] = stanza
    return installed


def _list_lines(path):
    """The lines of an apt list file, compressed or not (apt-helper reads what apt wrote)."""
    if path.endswith(".gz"):
        with gzip.open(path, "rb") as handle:
            for line in handle:
                yield line.decode("utf-8", "replace").rstrip("\n")
        return
    if path.endswith((".lz4", ".xz", ".zst", ".bz2")):
        helper = "/usr/lib/apt/apt-helper"
        if not os.path.exists(helper):
            return
        # Streamed line by line: run_command would hold the whole list (tens of MB) in memory.
        process = subprocess.Popen(  # pylint: disable=ansible-bad-function
            [helper, "cat-file", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        for line in process.stdout:
            yield line.decode("utf-8", "replace").rstrip("\n")
        process.wait()
        return
    with open(path, "rb") as handle:
        for line in handle:
            yield line.decode("utf-8", "replace").rstrip("\n")


def _release_origin(lists_dir, list_name):
    """'Origin suite/component' for a Packages list, from its Release file where there is one."""
    prefix, _sep, rest = list_name.partition("_dists_")
    parts = rest.split("_")
    suite = parts[0] if parts and rest else ""
    component = parts[1] if len(parts) > 2 else ""
    origin = None
    for name in ("InRelease", "Release"):
        lines = read_lines(os.path.join(lists_dir, "%s_dists_%s_%s" % (prefix, suite, name))) if rest else None
        if lines:
            origin = parse_colon_fields(lines).get("Origin")
            break
    if not rest:  # a flat repository: <site>_<path>_Packages
        return list_name.rsplit("_Packages", 1)[0].replace("_", "/")
    text = "%s/%s" % (suite, component) if component else suite
    return "%s %s" % (origin, text) if origin else text


def parse_colon_fields(lines):
    fields = {}
    for line in lines:
        if line and line[0] not in " \t" and ":" in line:
            key, value = line.split(":", 1)
            fields.setdefault(key, value.strip())
        if not line.strip():
            break
    return fields


def package_origins(root, wanted, skipped):
    """(name, version) -> origin for the wanted pairs, from apt's lists; 'local' for those in none."""
    lists_dir = rooted(root, "/var/lib/apt/lists")
    names = sorted(n for n in glob.glob(os.path.join(lists_dir, "*_Packages*")) if not n.endswith(".diff_Index"))
    if not names:
        skipped.add("packages", "no apt lists here (apt-get update has not run): package origins unknown")
        return {}
    origins = {}
    for path in names:
        base = os.path.basename(path)
        origin = _release_origin(lists_dir, base.split("_Packages")[0] + "_Packages")
        name = None
        for line in _list_lines(path):
            if line.startswith("Package: "):
                name = line[9:].strip()
            elif name and line.startswith("Version: "):
                pair = (name, line[9:].strip())
                if pair in wanted and pair not in origins:
                    origins[pair] = origin
                name = None
    return dict((pair, origins.get(pair, "local")) for pair in wanted)


def scan_dpkg_packages(root, installed, skipped, with_origin=True):
    packages = []
    for name, stanza in installed.items():
        packages.append(dict(name=name, version=stanza.get("Version"), arch=stanza.get("Architecture"),
                             manager="dpkg", origin=None))
    if with_origin:
        origins = package_origins(root, set((p["name"], p["version"]) for p in packages), skipped)
        for package in packages:
            package["origin"] = origins.get((package["name"], package["version"]))
    return sorted(packages, key=lambda p: (p["name"], p["arch"] or ""))


def parse_rpm_query(text):
    """Lines of NAME\\tEPOCH:VERSION-RELEASE\\tARCH\\tVENDOR (rpm -qa --qf) -> packages."""
    packages = []
    for line in text.splitlines():
        parts = line.split("\t")
        if len(parts) < 4:
            continue
        name, version, arch, vendor = parts[:4]
        if version.startswith("(none):"):
            version = version[len("(none):"):]
        packages.append(dict(name=name, version=version, arch=arch, manager="rpm",
                             origin=None if vendor == "(none)" else vendor))
    return sorted(packages, key=lambda p: (p["name"], p["arch"] or ""))


RUNNER = []  # the module's run_command, set by Scanner


def run(argv):
    if not RUNNER:
        raise ScanError("internal error: no command runner for %s" % argv[0])
    return RUNNER[0](argv)


def scan_rpm_packages():
    rc, out, err = run(["rpm", "-qa", "--qf", "%{NAME}\\t%{EPOCH}:%{VERSION}-%{RELEASE}\\t%{ARCH}\\t%{VENDOR}\\n"])
    if rc != 0:
        raise ScanError("rpm -qa failed: %s" % err.strip())
    return parse_rpm_query(out)


def package_manager(root):
    if os.path.exists(rooted(root, "/var/lib/dpkg/status")):
        return "dpkg"
    if root in ("", "/") and shutil.which("rpm"):
        return "rpm"
    return None


# ---- services -------------------------------------------------------------------------------------
UNIT_DIRS = ("/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system", "/usr/lib/systemd/system",
             "/lib/systemd/system")


def scan_services(root, skipped):
    """Enabled units (systemd's *.wants / *.requires links, SysV rc links) and, where systemd runs, running ones."""
    services = {}
    base = rooted(root, "/etc/systemd/system")
    for link in sorted(glob.glob(os.path.join(base, "*.wants", "*")) + glob.glob(os.path.join(base, "*.requires", "*"))):
        unit = os.path.basename(link)
        target = os.path.basename(os.path.dirname(link)).rsplit(".", 1)[0]
        entry = services.setdefault(unit, dict(name=unit, enabled=True, wanted_by=[], unit_path=None, running=None,
                                               init="systemd"))
        entry["wanted_by"].append(target)
        if os.path.islink(link) and entry["unit_path"] is None:
            entry["unit_path"] = os.readlink(link)
    for link in sorted(glob.glob(os.path.join(base, "*"))):
        if os.path.islink(link) and os.readlink(link) == "/dev/null":
            unit = os.path.basename(link)
            services[unit] = dict(name=unit, enabled=False, masked=True, wanted_by=[], unit_path=None, running=None,
                                  init="systemd")
    for link in sorted(glob.glob(rooted(root, "/etc/rc[2-5].d/S*"))):
        name = os.path.basename(link)[3:]
        if name + ".service" in services:
            continue
        entry = services.setdefault("sysv:" + name, dict(name="sysv:" + name, enabled=True, wanted_by=[],
                                                         unit_path="/etc/init.d/" + name, running=None, init="sysv"))
        runlevel = "runlevel" + os.path.basename(os.path.dirname(link))[2]
        if runlevel not in entry["wanted_by"]:
            entry["wanted_by"].append(runlevel)
    running = running_units(root, skipped)
    if running is not None:
        for entry in services.values():
            entry["running"] = entry["name"] in running
        for unit in running:
            services.setdefault(unit, dict(name=unit, enabled=False, wanted_by=[], unit_path=None, running=True,
                                           init="systemd"))
    return sorted(services.values(), key=lambda s: s["name"])


def running_units(root, skipped):
    if root not in ("", "/") or not os.path.isdir("/run/systemd/system") or not shutil.which("systemctl"):
        skipped.add("services", "systemd is not running here: which services run is unknown (enabled ones are listed)")
        return None
    rc, out, err = run(["systemctl", "list-units", "--type=service", "--state=running", "--no-legend", "--plain",
                        "--no-pager"])
    if rc != 0:
        skipped.add("services", "systemctl list-units failed: %s" % err.strip())
        return None
    return set(line.split()[0] for line in out.splitlines() if line.strip())


# ---- ports ----------------------------------------------------------------------------------------
def _hex_address(text):
    address, port = text.split(":")
    raw = bytes.fromhex(address)
    if len(raw) == 4:
        host = socket.inet_ntop(socket.AF_INET, raw[::-1])
    else:
        host = socket.inet_ntop(socket.AF_INET6, b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))
    return host, int(port, 16)


def parse_proc_net(lines, proto):
    """Listening sockets of one /proc/net table: (proto, address, port, inode)."""
    found = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) < 10:
            continue
        state = fields[3]
        if (proto.startswith("tcp") and state != "0A") or (proto.startswith("udp") and state != "07"):
            continue
        host, port = _hex_address(fields[1])
        found.append((proto.rstrip("6"), host, port, fields[9]))
    return found


def socket_owners(inodes):
    owners = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            fds = os.listdir("/proc/%s/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink("/proc/%s/fd/%s" % (pid, fd))
            except OSError:
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes and target[8:-1] not in owners:
                comm = read_lines("/proc/%s/comm" % pid)
                owners[target[8:-1]] = comm[0] if comm else None
    return owners


def scan_ports(root, skipped):
    if root not in ("", "/") or not os.path.exists("/proc/net/tcp"):
        skipped.add("ports", "/proc is not mounted here: listening ports unknown")
        return []
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        found.extend(parse_proc_net(read_lines("/proc/net/" + proto) or [], proto))
    owners = socket_owners(set(f[3] for f in found))
    ports = dict(((proto, host, port), dict(proto=proto, address=host, port=port, process=owners.get(inode)))
                 for proto, host, port, inode in found)
    return sorted(ports.values(), key=lambda p: (p["proto"], p["port"], p["address"]))


# ---- users, groups, cron --------------------------------------------------------------------------
def scan_users(root):
    users = []
    for line in read_lines(rooted(root, "/etc/passwd")) or ():
        fields = line.split(":")
        if len(fields) >= 7 and not line.startswith("#"):
            users.append(dict(name=fields[0], uid=int(fields[2]), gid=int(fields[3]), home=fields[5], shell=fields[6]))
    return sorted(users, key=lambda u: u["name"])


def scan_groups(root):
    groups = []
    for line in read_lines(rooted(root, "/etc/group")) or ():
        fields = line.split(":")
        if len(fields) >= 4 and not line.startswith("#"):
            members = sorted(m for m in fields[3].split(",") if m)
            groups.append(dict(name=fields[0], gid=int(fields[2]), members=members))
    return sorted(groups, key=lambda g: g["name"])


def parse_crontab(lines, source, user=None):
    """Jobs of one crontab; ``user`` None means the file has a user column (/etc/crontab, /etc/cron.d)."""
    jobs = []
    for line in lines:
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        head = text.split(None, 1)[0]
        if "=" in head and not head.startswith("@"):
            continue  # an environment line (MAILTO=...): not a job, and may hold a secret
        fields = text.split()
        width = 1 if fields[0].startswith("@") else 5
        if len(fields) < width + (1 if user else 2):
            continue
        job_user = user or fields[width]
        # a job's command line may carry a password (mysqldump -pSECRET): masked before it is kept
        command = mask_command(" ".join(fields[width + (0 if user else 1):]))
        jobs.append(dict(source=source, user=job_user, schedule=" ".join(fields[:width]), command=command))
    return jobs


def scan_cron(root):
    jobs = []
    for path in [rooted(root, "/etc/crontab")] + sorted(glob.glob(rooted(root, "/etc/cron.d/*"))):
        lines = read_lines(path)
        if lines is not None and not os.path.basename(path).startswith("."):
            jobs.extend(parse_crontab(lines, shown_path(root, path)))
    for path in sorted(glob.glob(rooted(root, "/var/spool/cron/crontabs/*"))):
        lines = read_lines(path)
        if lines is not None:
            jobs.extend(parse_crontab(lines, "/var/spool/cron/crontabs/" + os.path.basename(path),
                                      user=os.path.basename(path)))
    for period in ("hourly", "daily", "weekly", "monthly"):
        for path in sorted(glob.glob(rooted(root, "/etc/cron.%s/*" % period))):
            name = os.path.basename(path)
            if not name.startswith(".") and name != "placeholder":
                jobs.append(dict(source="/etc/cron.%s" % period, user="root", schedule="@" + period,
                                 command="/etc/cron.%s/%s" % (period, name)))
    return jobs


# ---- mounts and addresses -------------------------------------------------------------------------
def scan_mounts(root, skipped):
    lines = read_lines("/proc/self/mounts") if root in ("", "/") else None
    if lines is None:
        skipped.add("mounts", "/proc is not mounted here (or this is a chroot): mounts unknown")
        return []
    mounts = {}
    for line in lines:
        fields = line.split()
        if len(fields) < 4 or fields[2] in PSEUDO_FILESYSTEMS:
            continue
        mountpoint = fields[1].replace("\\040", " ")
        entry = dict(mountpoint=mountpoint, device=fields[0], fstype=fields[2], options=fields[3])
        try:
            usage = os.statvfs(mountpoint)
            entry["size_bytes"] = usage.f_blocks * usage.f_frsize
            entry["used_bytes"] = (usage.f_blocks - usage.f_bfree) * usage.f_frsize
        except OSError:
            entry["size_bytes"] = entry["used_bytes"] = None
        mounts[mountpoint] = entry
    return sorted(mounts.values(), key=lambda m: m["mountpoint"])


def parse_ip_json(data):
    addresses = []
    for link in data:
        for info in link.get("addr_info", ()):
            addresses.append(dict(interface=link.get("ifname"), family=info.get("family"),
                                  address=info.get("local"), prefix=info.get("prefixlen")))
    return sorted(addresses, key=lambda a: (a["interface"] or "", a["family"] or "", a["address"] or ""))


def scan_addresses(root, skipped):
    import json

    if root not in ("", "/") or not shutil.which("ip"):
        skipped.add("addresses", "the ip command is not available here: network addresses unknown")
        return []
    rc, out, err = run(["ip", "-j", "addr", "show"])
    if rc != 0:
        skipped.add("addresses", "ip -j addr show failed: %s" % err.strip())
        return []
    return parse_ip_json(json.loads(out or "[]"))


# ---- files ----------------------------------------------------------------------------------------
def owner_names():
    users, groups = {}, {}

    def user(uid):
        if uid not in users:
            try:
                users[uid] = pwd.getpwuid(uid).pw_name
            except KeyError:
                users[uid] = str(uid)
        return users[uid]

    def group(gid):
        if gid not in groups:
            try:
                groups[gid] = grp.getgrgid(gid).gr_name
            except KeyError:
                groups[gid] = str(gid)
        return groups[gid]

    return user, group


# Content that makes a file a credential: a private key, or an assignment to a password-like name. Only the
# flag is kept (``secret: true``), never the content; a rebuild leaves such files out unless asked.
SECRET_CONTENT = re.compile(br"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----|(?i:\b(?:password|passwd|pwd|secret|"
                            br"api[_-]?key|access[_-]?key|token)\b[\"']?\s*[=:])")
# Command-line secrets in cron jobs: mysql's -pSECRET (MYSQL_PASSWORD), --password=SECRET / --password SECRET, NAME=SECRET for
# password-like names, and user:SECRET@ in URLs.
MYSQL_PASSWORD = re.compile(r"(?<!\S)(-p)(?!\s)\S+")  # only on mysql/mariadb command lines: -print is no password
CRON_SECRETS = (
    (re.compile(r"(?i)(--(?:password|passwd|pass|token|secret)[= ])\S+"), r"\1********"),
    (re.compile(r"(?i)\b([A-Z0-9_]*(?:PASSWORD|PASSWD|PASS|TOKEN|SECRET|KEY)[A-Z0-9_]*=)\S+"), r"\1********"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1********@"),
)


def mask_command(command):
    if "mysql" in command or "mariadb" in command:
        command = MYSQL_PASSWORD.sub(r"\1********", command)
    for pattern, replacement in CRON_SECRETS:
        command = pattern.sub(replacement, command)
    return command


def read_blocks(path):
    with open(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                return
            yield block


def file_digest_and_secret(path):
    """The file's sha256, and whether its content looks like a credential (see SECRET_CONTENT)."""
    digest, secret, tail = hashlib.sha256(), False, b""
    for block in read_blocks(path):
        digest.update(block)
        if not secret:
            secret = SECRET_CONTENT.search(tail + block) is not None  # a match across two blocks counts
            tail = block[-128:]
    return digest.hexdigest(), secret


def file_digest(path, algorithm="sha256"):
    digest = hashlib.new(algorithm)
    for block in read_blocks(path):
        digest.update(block)
    return digest.hexdigest()


class FileHasher:
    """Hashes files within the scan's bounds (per file, count, total bytes); records what it skipped."""

    def __init__(self, skipped, max_bytes, max_files, max_total):
        self.skipped = skipped
        self.max_bytes, self.max_files, self.max_total = max_bytes, max_files, max_total
        self.files = 0
        self.total = 0
        self.over = dict(size=0, count=0)

    def admit(self, size):
        if size > self.max_bytes:
            self.over["size"] += 1
            return False
        if self.files >= self.max_files or self.total + size > self.max_total:
            self.over["count"] += 1
            return False
        self.files += 1
        self.total += size
        return True

    def report(self, category):
        if self.over["size"]:
            self.skipped.add(category, "files larger than hash_max_bytes (%d) were not hashed" % self.max_bytes,
                             count=self.over["size"])
        if self.over["count"]:
            self.skipped.add(category, "hash_max_files or hash_max_total_bytes reached: later files not hashed",
                             count=self.over["count"])


def describe_file(path, shown, names, hasher, pool, pending, skipped, category):
    """Metadata of one path (no contents); the sha256 is computed by ``pool`` when the hasher admits it."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        skipped.add(category, "cannot stat: %s" % exc.strerror, path=shown)
        return None
    user, group = names
    entry = dict(path=shown, size=info.st_size, mode="%04o" % stat.S_IMODE(info.st_mode), owner=user(info.st_uid),
                 group=group(info.st_gid), sha256=None)
    if stat.S_ISLNK(info.st_mode):
        entry.update(type="link", target=os.readlink(path), size=0)
    elif stat.S_ISREG(info.st_mode):
        entry["type"] = "file"
        if hasher.admit(info.st_size):
            pending.append((entry, pool.submit(file_digest_and_secret, path)))
    else:
        entry["type"] = "other"
    return entry


def dpkg_file_lists(root, installed):
    """Every path some installed package owns (its *.list), and the diversions' targets."""
    info = rooted(root, "/var/lib/dpkg/info")
    owned = set()
    for name, stanza in installed.items():
        for candidate in (name, "%s:%s" % (name, stanza.get("Architecture"))):
            lines = read_lines(os.path.join(info, candidate + ".list"))
            if lines is not None:
                owned.update(lines)
                break
    diversions = read_lines(rooted(root, "/var/lib/dpkg/diversions")) or []
    owned.update(diversions[1::3])
    return owned, set(diversions[0::3])


def usr_merged_variants(path):
    """/bin/x and /usr/bin/x name one file on a merged-/usr system; dpkg lists either."""
    for top in ("/bin/", "/sbin/", "/lib/", "/lib64/"):
        if path.startswith(top):
            return (path, "/usr" + path)
        if path.startswith("/usr" + top):
            return (path, path[4:])
    return (path,)


def excluded(path, patterns):
    return any(fnmatch.fnmatchcase(path, pattern) for pattern in patterns)


def walk(root, directory, patterns, skipped, category):
    """Yield (real path, shown path) of every non-directory under ``directory``, one filesystem, no links followed."""
    top = rooted(root, directory)
    try:
        device = os.lstat(top).st_dev
    except OSError:
        return
    stack = [top]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError as exc:
            skipped.add(category, "cannot list: %s" % exc.strerror, path=current)
            continue
        for entry in sorted(entries, key=lambda e: e.name):
            shown = shown_path(root, entry.path)
            if excluded(shown, patterns):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if entry.stat(follow_symlinks=False).st_dev == device:
                        stack.append(entry.path)
                    continue
            except OSError:
                continue
            yield entry.path, shown


def verify_dpkg(root, installed, mode, skipped, conffiles_only_hash=True):
    """Files whose md5 differs from what their package shipped (dpkg --verify): (path, package, reason, conffile)."""
    found = []
    conffiles = {}
    for name, stanza in installed.items():
        for line in stanza.get("Conffiles", "").splitlines():
            fields = line.split()
            if len(fields) >= 2 and "obsolete" not in fields[2:] and "remove-on-upgrade" not in fields[2:]:
                conffiles[fields[0]] = (name, fields[1])
    checks = [(path, package, md5, True) for path, (package, md5) in conffiles.items()]
    if mode == "all":
        info = rooted(root, "/var/lib/dpkg/info")
        for name, stanza in installed.items():
            lines = None
            for candidate in (name, "%s:%s" % (name, stanza.get("Architecture"))):
                lines = read_lines(os.path.join(info, candidate + ".md5sums"))
                if lines is not None:
                    break
            for line in lines or ():
                md5, _sep, path = line.partition("  ")
                path = "/" + path.strip()
                if path and path not in conffiles:
                    checks.append((path, name, md5.strip(), False))
    diverted = set((read_lines(rooted(root, "/var/lib/dpkg/diversions")) or [])[0::3])

    def check(item):
        path, package, md5, conffile = item
        if path in diverted:
            return None
        real = rooted(root, path)
        try:
            if os.path.islink(real) or not os.path.isfile(real):
                return None if os.path.lexists(real) else (path, package, "missing", conffile)
            if md5 == "newconffile":
                return None
            return None if file_digest(real, "md5") == md5 else (path, package, "checksum", conffile)
        except (IOError, OSError) as exc:
            skipped.add("changed_files", "cannot read: %s" % exc.strerror, path=path)
            return None

    with ThreadPoolExecutor(max_workers=4) as pool:
        for result in pool.map(check, checks, chunksize=64):
            if result:
                found.append(result)
    return found, len(checks)


def parse_rpm_verify(text):
    """rpm -Va output -> (path, reason, conffile); reason 'missing' or the failed checks ('S.5....T.')."""
    found = []
    for line in text.splitlines():
        if line.startswith("missing"):
            fields = line.split()
            found.append((fields[-1], "missing", len(fields) == 3 and fields[1] == "c"))
            continue
        fields = line.split()
        if len(fields) >= 2 and len(fields[0]) >= 8 and fields[-1].startswith("/"):
            conffile = len(fields) == 3 and fields[1] == "c"
            reason = "checksum" if "5" in fields[0] else "attributes:" + fields[0]
            found.append((fields[-1], reason, conffile))
    return found


class Scanner:
    """One scan of ``root``; ``run()`` returns the report (a dict ready for JSON)."""

    def __init__(self, root="/", categories=CATEGORIES, directories=("/etc", "/srv", "/opt", "/usr/local"),
                 exclude=(), package_verify="all", package_origin=True, hash_max_bytes=32 * CHUNK,
                 hash_max_files=20000, hash_max_total_bytes=2048 * CHUNK, max_files=100000, runner=None):
        self.root = root
        RUNNER[:] = [runner] if runner else []
        self.categories = categories
        self.directories = directories
        self.exclude = tuple(DEFAULT_EXCLUDE) + tuple(exclude or ())
        self.package_verify = package_verify
        self.package_origin = package_origin
        self.hasher_args = (hash_max_bytes, hash_max_files, hash_max_total_bytes)
        self.max_files = max_files
        self.skipped = Skipped()

    def run(self):
        root, wanted, report = self.root, self.categories, {}
        manager = package_manager(root)
        installed = dpkg_installed(root) if manager == "dpkg" else None
        if "os" in wanted:
            report["os"] = scan_os(root)
        if "packages" in wanted:
            if manager == "dpkg":
                report["packages"] = scan_dpkg_packages(root, installed, self.skipped, self.package_origin)
            elif manager == "rpm":
                report["packages"] = scan_rpm_packages()
            else:
                self.skipped.add("packages", "no dpkg or rpm database here")
                report["packages"] = []
        if "services" in wanted:
            report["services"] = scan_services(root, self.skipped)
        if "ports" in wanted:
            report["ports"] = scan_ports(root, self.skipped)
        if "users" in wanted:
            report["users"] = scan_users(root)
        if "groups" in wanted:
            report["groups"] = scan_groups(root)
        if "cron" in wanted:
            report["cron"] = scan_cron(root)
        if "mounts" in wanted:
            report["mounts"] = scan_mounts(root, self.skipped)
        if "addresses" in wanted:
            report["addresses"] = scan_addresses(root, self.skipped)
        if "changed_files" in wanted or "unowned_files" in wanted:
            self.scan_files(manager, installed, report)
        report["skipped"] = self.skipped.items
        return report

    def scan_files(self, manager, installed, report):
        hasher = FileHasher(self.skipped, *self.hasher_args)
        names = owner_names() if self.root in ("", "/") else self.rooted_names()
        pending = []
        with ThreadPoolExecutor(max_workers=4) as pool:
            if "changed_files" in self.categories:
                report["changed_files"] = self.changed_files(manager, installed, names, hasher, pool, pending)
            if "unowned_files" in self.categories:
                report["unowned_files"] = self.unowned_files(manager, installed, names, hasher, pool, pending)
            for entry, future in pending:
                try:
                    entry["sha256"], secret = future.result()
                    if secret:
                        entry["secret"] = True
                except (IOError, OSError) as exc:
                    self.skipped.add("unowned_files", "cannot read: %s" % exc.strerror, path=entry["path"])
        hasher.report("files")

    def rooted_names(self):
        """uid/gid -> name from the scanned root's own passwd and group files (a chroot's, in tests)."""
        users = dict((u["uid"], u["name"]) for u in scan_users(self.root))
        groups = dict((g["gid"], g["name"]) for g in scan_groups(self.root))
        return (lambda uid: users.get(uid, str(uid))), (lambda gid: groups.get(gid, str(gid)))

    def changed_files(self, manager, installed, names, hasher, pool, pending):
        if self.package_verify == "none":
            return []
        if manager == "dpkg":
            found, checked = verify_dpkg(self.root, installed, self.package_verify, self.skipped)
            rows = list(found)
        elif manager == "rpm":
            argv = ["rpm", "-Va", "--nomtime"] + (["--configfiles"] if self.package_verify == "conffiles" else [])
            unused_rc, out, unused_err = run(argv)  # rpm -Va exits 1 when it found changes
            rows = [(path, None, reason, conffile) for path, reason, conffile in parse_rpm_verify(out)]
        else:
            return []
        changed = []
        for path, package, reason, conffile in sorted(rows):
            entry = dict(path=path, package=package, reason=reason, conffile=conffile)
            if reason != "missing":
                described = describe_file(rooted(self.root, path), path, names, hasher, pool, pending, self.skipped,
                                          "changed_files")
                if described:
                    described.update(entry)
                    entry = described
            changed.append(entry)
        return changed

    def unowned_files(self, manager, installed, names, hasher, pool, pending):
        if manager == "dpkg":
            owned, unused_diverted = dpkg_file_lists(self.root, installed)
        elif manager == "rpm":
            unused_rc, out, unused_err = run(["rpm", "-qal"])
            owned = set(out.splitlines())
        else:
            owned = set()
        files, listed = [], 0
        for directory in self.directories:
            if not os.path.isdir(rooted(self.root, directory)):
                # nothing is left out silently: a directory asked for that is not there is said so
                self.skipped.add("unowned_files", "no such directory", path=directory)
                continue
            for real, shown in walk(self.root, directory, self.exclude, self.skipped, "unowned_files"):
                if any(variant in owned for variant in usr_merged_variants(shown)):
                    continue
                if listed >= self.max_files:
                    listed += 1
                    continue
                listed += 1
                entry = describe_file(real, shown, names, hasher, pool, pending, self.skipped, "unowned_files")
                if entry:
                    files.append(entry)
        if listed > self.max_files:
            self.skipped.add("unowned_files", "max_files (%d) reached: later files not listed" % self.max_files,
                             count=listed - self.max_files)
        return files


def summary_counts(report):
    return dict((name, len(report[name])) for name in CATEGORIES if isinstance(report.get(name), list))
