# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration ledger: one JSON document per migration id.

The ledger records, for every resource and step of a migration, where it came
from, what it became, and how far it got. It drives resume, verify, reports and
cleanup, so it must survive crashes and concurrent writers:

* every change is a read-modify-write under an exclusive ``flock`` on a lock
  file beside the document, so parallel tasks (forks, async jobs) never lose
  each other's entries;
* the new document is written to a temporary file in the same directory,
  fsync'ed and renamed over the old one, so a crash leaves either the old or the
  new document, never a torn one;
* it refuses values that look like secrets: a ledger is copied into reports and
  CI artefacts and must never hold a credential.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import json
import os
import re
import tempfile

FORMAT_VERSION = 1
STATUSES = ("planned", "running", "done", "failed", "cleaned")
# Fields an entry may carry; anything else goes into ``data``.
ENTRY_FIELDS = (
    "type", "source_id", "destination_id", "phase", "status",
    "checksum", "bytes", "seconds", "started", "data",
)
DEFAULT_LEDGER_DIR = "~/.cloudshift/ledger"
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")

# Names of keys whose values are credentials, wherever they appear.
_SECRET_KEY_RE = re.compile(
    r"(pass(word|wd|phrase)?$|^pwd$|secret|token|private[_-]?key|privkey|api[_-]?key"
    r"|^auth$|credential|session[_-]?key|^key_material$)",
    re.IGNORECASE,
)
# Values that are credentials whatever key holds them.
_SECRET_VALUE_RES = (
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key ids
    re.compile(r"\bgAAAAA[A-Za-z0-9_-]{60,}"),  # Keystone fernet tokens
    re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\."),  # JWTs
    re.compile(r"://[^/\s:@]+:[^/\s@]+@"),  # URLs with user:password@
)


class LedgerError(Exception):
    """A ledger operation failed; the message says why, and nothing was written."""


class LedgerSecretError(LedgerError):
    """A value handed to the ledger looks like a credential."""


def default_ledger_dir(ledger_dir=None):
    """The ledger directory: the one given, else $CLOUDSHIFT_LEDGER_DIR, else ~/.cloudshift/ledger."""
    return os.path.expanduser(ledger_dir or os.environ.get("CLOUDSHIFT_LEDGER_DIR") or DEFAULT_LEDGER_DIR)


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def validate_migration_id(migration_id):
    if not isinstance(migration_id, str) or not _ID_RE.match(migration_id):
        raise LedgerError(
            "migration_id %r is not valid: use 1-128 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit" % (migration_id,)
        )


def find_secrets(value, path="entry"):
    """Return the paths inside ``value`` that hold (or are named like) secrets."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            child = "%s.%s" % (path, key)
            if _SECRET_KEY_RE.search(str(key)) and item not in (None, "", [], {}):
                found.append(child)
            else:
                found.extend(find_secrets(item, child))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found.extend(find_secrets(item, "%s[%d]" % (path, index)))
    elif isinstance(value, str):
        if any(pattern.search(value) for pattern in _SECRET_VALUE_RES):
            found.append(path)
    return found


def entry_key(entry_type, source_id):
    return "%s:%s" % (entry_type, source_id)


class Ledger:
    """One migration's ledger document under ``ledger_dir``."""

    def __init__(self, ledger_dir, migration_id):
        validate_migration_id(migration_id)
        if not ledger_dir:
            raise LedgerError("ledger_dir must be set")
        self.ledger_dir = os.path.abspath(os.path.expanduser(ledger_dir))
        self.migration_id = migration_id
        self.path = os.path.join(self.ledger_dir, migration_id + ".json")
        self.lock_path = self.path + ".lock"

    # -- reading -------------------------------------------------------------
    def exists(self):
        return os.path.exists(self.path)

    def load(self):
        """Return the document; an empty one when the migration has no ledger yet."""
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                document = json.load(handle)
        except (IOError, OSError) as exc:
            if exc.errno == errno.ENOENT:
                return self._empty()
            raise LedgerError("cannot read ledger %s: %s" % (self.path, exc))
        except ValueError as exc:
            raise LedgerError("ledger %s is not valid JSON: %s" % (self.path, exc))
        if not isinstance(document, dict) or document.get("migration_id") != self.migration_id:
            raise LedgerError("ledger %s does not belong to migration %s" % (self.path, self.migration_id))
        if document.get("format", 0) > FORMAT_VERSION:
            raise LedgerError(
                "ledger %s has format %s; this collection reads up to %s"
                % (self.path, document.get("format"), FORMAT_VERSION)
            )
        document.setdefault("entries", {})
        return document

    def get(self, key=None, entry_type=None, source_id=None):
        key = key or entry_key(entry_type, source_id)
        return self.load()["entries"].get(key)

    def entries(self, entry_type=None, phase=None, status=None):
        found = []
        for entry in self.load()["entries"].values():
            if entry_type and entry.get("type") != entry_type:
                continue
            if phase and entry.get("phase") != phase:
                continue
            if status and entry.get("status") not in _as_list(status):
                continue
            found.append(entry)
        return sorted(found, key=lambda item: (item.get("started") or item.get("recorded") or "", item["key"]))

    # -- writing -------------------------------------------------------------
    def record(self, entry_type, source_id, key=None, **fields):
        """Create or update one entry; return ``(entry, changed)``.

        Only the given fields change. ``data`` is merged key by key. Timestamps
        follow the status: ``started`` when it first becomes running (or done
        without having run), ``finished`` when it becomes done or failed.
        """
        if not entry_type or source_id in (None, ""):
            raise LedgerError("an entry needs a type and a source_id")
        unknown = set(fields) - set(ENTRY_FIELDS)
        if unknown:
            raise LedgerError("unknown ledger fields: %s" % ", ".join(sorted(unknown)))
        status = fields.get("status")
        if status is not None and status not in STATUSES:
            raise LedgerError("status must be one of %s, not %r" % (", ".join(STATUSES), status))
        self._refuse_secrets(dict(fields, type=entry_type, source_id=source_id, key=key))
        key = key or entry_key(entry_type, source_id)
        return self._update(lambda document: _apply(document, key, entry_type, str(source_id), fields))

    def mark_cleaned(self, key=None, entry_type=None, source_id=None):
        key = key or entry_key(entry_type, source_id)

        def change(document):
            entry = document["entries"].get(key)
            if entry is None:
                raise LedgerError("no ledger entry %s in migration %s" % (key, self.migration_id))
            if entry.get("status") == "cleaned":
                return entry, False
            entry["status"] = "cleaned"
            entry["cleaned"] = utc_now()
            return entry, True

        return self._update(change)

    def _refuse_secrets(self, fields):
        paths = find_secrets(fields)
        if paths:
            raise LedgerSecretError(
                "refusing to write what looks like a secret into the ledger at: %s" % ", ".join(paths)
            )

    def _empty(self):
        now = utc_now()
        return {
            "format": FORMAT_VERSION,
            "migration_id": self.migration_id,
            "created": now,
            "updated": now,
            "entries": {},
        }

    def _update(self, change):
        """Apply ``change(document) -> (result, changed)`` under the lock, atomically."""
        _makedirs(self.ledger_dir)
        try:
            lock_fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise LedgerError("cannot lock ledger %s: %s" % (self.path, exc.strerror))
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            document = self.load()
            result, changed = change(document)
            if changed:
                document["updated"] = utc_now()
                try:
                    self._write(document)
                except OSError as exc:  # full disk, read-only, permissions: the old document stays
                    raise LedgerError("cannot write ledger %s: %s" % (self.path, exc.strerror or exc))
            return result, changed
        finally:
            os.close(lock_fd)  # closing releases the flock

    def _write(self, document):
        handle = tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=self.ledger_dir, prefix="." + self.migration_id + ".",
            suffix=".tmp", delete=False,
        )
        try:
            with handle:
                json.dump(document, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(handle.name, 0o600)
            os.replace(handle.name, self.path)
        except BaseException:
            _remove_quietly(handle.name)
            raise
        _fsync_dir(self.ledger_dir)


def _apply(document, key, entry_type, source_id, fields):
    entries = document["entries"]
    entry = entries.get(key)
    now = utc_now()
    if entry is None:
        entry = {"key": key, "type": entry_type, "source_id": source_id, "recorded": now, "data": {}}
        changed = True
    else:
        if entry.get("type") != entry_type or entry.get("source_id") != source_id:
            raise LedgerError(
                "ledger key %s already holds %s %s" % (key, entry.get("type"), entry.get("source_id"))
            )
        entry = json.loads(json.dumps(entry))  # work on a copy until we know it changed
        changed = False
    for name, value in fields.items():
        if value is None:
            continue
        if name == "started":
            # When the step began, as the caller measured it: kept from the first record on, so that
            # re-recording a finished step (a re-run) neither moves it nor counts as a change.
            if not entry.get("started"):
                entry["started"] = _timestamp(value)
                changed = True
            continue
        if name == "data":
            if not isinstance(value, dict):
                raise LedgerError("data must be a dict, not %s" % type(value).__name__)
            merged = dict(entry.get("data") or {})
            merged.update(value)
            value = dict((key, item) for key, item in merged.items() if item is not None)  # None drops a key
        if entry.get(name) != value:
            entry[name] = value
            changed = True
    if changed:
        status = entry.get("status")
        if status in ("running", "done", "failed") and not entry.get("started"):
            # A step recorded only once it ended, with its duration: it began that long ago.
            seconds = entry.get("seconds") if status != "running" else None
            entry["started"] = _seconds_before(now, seconds) if isinstance(seconds, (int, float)) and seconds > 0 else now
        if status in ("done", "failed") and "status" in fields:
            entry["finished"] = now
        elif status == "cleaned" and "status" in fields:
            entry["cleaned"] = now  # as mark_cleaned does
        elif status == "running":
            entry.pop("finished", None)
        entry["updated"] = now
        entries[key] = entry
    return entry, changed


def _timestamp(value):
    """An ISO 8601 time (``2026-11-22T04:40:00Z``, with or without fraction or offset) as the ledger
    writes times: UTC, microseconds, ``Z``."""
    text = str(value).strip()
    try:
        parsed = datetime.datetime.strptime(text.replace("Z", "+0000").replace("+00:00", "+0000"),
                                            "%Y-%m-%dT%H:%M:%S.%f%z" if "." in text else "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        raise LedgerError("started must be an ISO 8601 time such as 2026-11-22T04:40:00Z, not %r" % text)
    return parsed.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _seconds_before(stamp, seconds):
    moment = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ") - datetime.timedelta(seconds=seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _as_list(value):
    return value if isinstance(value, (list, tuple)) else [value]


def _makedirs(path):
    try:
        os.makedirs(path, 0o700)
    except OSError as exc:
        if exc.errno != errno.EEXIST:
            raise LedgerError("cannot create ledger directory %s: %s" % (path, exc))


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def run_operation(params, check_mode=False):
    """The ``cloudshift.migrate.ledger`` module's work, shared with its action plugin.

    Returns the module result (without ``failed``); raises LedgerError on bad input
    before anything is written.
    """
    ledger = Ledger(default_ledger_dir(params.get("ledger_dir")), params["migration_id"])
    operation = params["operation"]
    statuses = params.get("status") or []
    result = {"changed": False, "actions": [], "migration_id": ledger.migration_id, "path": ledger.path}

    if operation == "list":
        result["entries"] = ledger.entries(params.get("type"), params.get("phase"), statuses or None)
        return result
    if params.get("entries") is not None:
        if operation != "record":
            raise LedgerError("entries is only for operation=record")
        specs = [_entry_spec(item, index) for index, item in enumerate(params["entries"])]
    else:
        if len(statuses) > 1:
            raise LedgerError("operation=%s takes one status, not %s" % (operation, ", ".join(statuses)))
        spec = dict((name, params.get(name)) for name in ENTRY_FIELDS)
        spec["status"] = statuses[0] if statuses else None
        spec["key"] = params.get("key")
        if not spec["key"] and not (spec["type"] and spec["source_id"]):
            raise LedgerError("operation=%s needs key, or type and source_id" % operation)
        specs = [spec]

    if operation == "get":
        spec = specs[0]
        result["entry"] = ledger.get(spec["key"], spec["type"], spec["source_id"])
        result["found"] = result["entry"] is not None
        return result

    # Validate every entry before writing any, so bad input changes nothing.
    existing = ledger.load()["entries"]
    for spec in specs:
        spec["key"] = spec["key"] or entry_key(spec["type"], spec["source_id"])
        current = existing.get(spec["key"])
        if operation == "mark_cleaned" or not (spec["type"] and spec["source_id"]):
            if current is None:
                raise LedgerError("no ledger entry %s in migration %s" % (spec["key"], ledger.migration_id))
            spec["type"], spec["source_id"] = current["type"], current["source_id"]
        if spec["status"] is not None and spec["status"] not in STATUSES:
            raise LedgerError("status must be one of %s, not %r" % (", ".join(STATUSES), spec["status"]))
        ledger._refuse_secrets(spec)

    done = []
    for spec in specs:
        key = spec.pop("key")
        entry_type = spec.pop("type")
        source_id = str(spec.pop("source_id"))
        if operation == "mark_cleaned":
            if check_mode:
                entry, changed = existing[key], existing[key].get("status") != "cleaned"
            else:
                entry, changed = ledger.mark_cleaned(key)
            verb = "mark %s cleaned" % key
        else:
            if check_mode:
                preview = {"entries": {key: existing[key]} if key in existing else {}}
                entry, changed = _apply(preview, key, entry_type, source_id, spec)
            else:
                entry, changed = ledger.record(entry_type, source_id, key=key, **spec)
            verb = "record %s" % key
        if changed:
            result["changed"] = True
            result["actions"].append("%s in ledger %s" % (verb, ledger.migration_id))
        done.append(entry)
    if params.get("entries") is not None:
        result["entries"] = done
    else:
        result["entry"] = done[0]
    return result


def _entry_spec(item, index):
    if not isinstance(item, dict):
        raise LedgerError("entries[%d] is not a dict" % index)
    unknown = set(item) - set(ENTRY_FIELDS) - set(["key"])
    if unknown:
        raise LedgerError("entries[%d] has unknown fields: %s" % (index, ", ".join(sorted(unknown))))
    spec = dict((name, item.get(name)) for name in ENTRY_FIELDS)
    spec["key"] = item.get("key")
    if spec["data"] is not None and not isinstance(spec["data"], dict):
        raise LedgerError("entries[%d].data must be a dict" % index)
    if not spec["key"] and not (spec["type"] and spec["source_id"] not in (None, "")):
        raise LedgerError("entries[%d] needs key, or type and source_id" % index)
    return spec
