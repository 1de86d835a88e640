# -*- coding: utf-8 -*-
# Copyright: cloudshift.migrate contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Glance v2 image calls, and a streaming upload with constant memory.

Image records go through the SDK's authenticated session (REST calls as in the
Image API reference); the image data itself goes through http.client with a
token from that session, so the bytes are streamed from the reader straight to
the socket with a Content-Length, hashed on the way, rate-limited if asked, and
never buffered (the SDK's own upload reads from a file object, which a qcow2
stream produced on the fly is not).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import socket
import ssl
import time

try:
    from http import client as http_client
    from urllib.parse import urlencode, urlsplit
except ImportError:  # pragma: no cover - Python 2 is not supported
    http_client = None


PATCH_TYPE = "application/openstack-images-v2.1-json-patch"
SEND_SIZE = 1024 * 1024


class SourceReadError(Exception):
    """Reading the data to upload failed (the disk, not Glance)."""


class GlanceError(Exception):
    """A Glance call failed; ``status`` is the HTTP status when there was one."""

    def __init__(self, msg, status=None):
        super(GlanceError, self).__init__(msg)
        self.status = status


def _check(response, what):
    if response.status_code >= 400:
        # The SDK is imported by now: a response came through its session.
        from openstack import exceptions as sdk_exceptions

        try:
            sdk_exceptions.raise_from_response(response, error_message="could not %s" % what)
        except sdk_exceptions.HttpException as exc:
            raise GlanceError(_one_line(exc), response.status_code)
        raise GlanceError("could not %s: HTTP %s" % (what, response.status_code), response.status_code)
    return response


def _one_line(exc):
    parts = [str(exc.message or "").strip()]
    if exc.details and str(exc.details) not in parts[0]:
        parts.append(str(exc.details).strip())
    return ": ".join(part for part in parts if part) + " (HTTP %s)" % exc.status_code


class Glance:
    """The image service of one cloud (an openstacksdk connection)."""

    def __init__(self, conn, timeout=300):
        self.conn = conn
        self.api = conn.image
        self.timeout = timeout

    # -- records -------------------------------------------------------------
    def create(self, name, disk_format, container_format="bare", properties=None, tags=None):
        body = dict(properties or {})
        body.update(name=name, disk_format=disk_format, container_format=container_format)
        if tags:
            body["tags"] = list(tags)
        return _check(self.api.post("/images", json=body), "create image %s" % name).json()

    def get(self, image_id):
        response = self.api.get("/images/%s" % image_id)
        if response.status_code == 404:
            return None
        return _check(response, "read image %s" % image_id).json()

    def find(self, name):
        """Every image called ``name`` that this project owns (all pages).

        Public or shared images of other projects may carry the same name; they are
        not ours to replace or clean up.
        """
        found = []
        query = {"name": name, "limit": 100}
        owner = self.conn.current_project_id
        if owner:
            query["owner"] = owner
        url = "/images?" + urlencode(query)
        while url:
            page = _check(self.api.get(url), "list images named %s" % name).json()
            found.extend(page.get("images", []))
            following = page.get("next")
            url = following[len("/v2"):] if following and following.startswith("/v2") else following
        return found

    def update_properties(self, image_id, properties):
        patch = [{"op": "add", "path": "/%s" % key, "value": value} for key, value in sorted(properties.items())]
        response = self.api.patch("/images/%s" % image_id, data=json.dumps(patch),
                                  headers={"Content-Type": PATCH_TYPE})
        return _check(response, "set properties of image %s" % image_id).json()

    def delete(self, image_id):
        response = self.api.delete("/images/%s" % image_id)
        if response.status_code == 404:
            return False
        _check(response, "delete image %s" % image_id)
        return True

    def start_import(self, image_id, method="glance-direct"):
        response = self.api.post("/images/%s/import" % image_id, json={"method": {"name": method}})
        _check(response, "import image %s" % image_id)

    def wait_active(self, image_id, timeout, importing=False):
        """Wait until the image is active; fail when it lands anywhere else (or an import failed)."""
        deadline = time.time() + timeout
        delay = 0.2
        while True:
            image = self.get(image_id)
            if image is None:
                raise GlanceError("image %s disappeared while waiting for it to become active" % image_id)
            status = image.get("status")
            if status == "active":
                return image
            if status in ("killed", "deleted", "pending_delete", "deactivated"):
                raise GlanceError("image %s ended %s instead of active" % (image_id, status))
            failed = image.get("os_glance_failed_import")
            if importing and failed:
                raise GlanceError("Glance could not import image %s (failed stores: %s)" % (image_id, failed))
            if time.time() > deadline:
                raise GlanceError("image %s is still %s after %d s" % (image_id, status, timeout))
            time.sleep(delay)
            delay = min(delay * 1.5, 2.0)

    # -- data ----------------------------------------------------------------
    def upload(self, image_id, chunks, length, stage=False, progress=None, limiter=None):
        """PUT ``length`` bytes from ``chunks`` to the image's file (or staging area).

        Returns the sha512 of what was sent. Raises GlanceError on any failure,
        with Glance's answer when it gave one.
        """
        endpoint = urlsplit(self.api.get_endpoint())
        path = endpoint.path.rstrip("/") + "/images/%s/%s" % (image_id, "stage" if stage else "file")
        connection = self._connection(endpoint)
        digest = hashlib.sha512()
        sent = 0
        try:
            connection.putrequest("PUT", path, skip_accept_encoding=True)
            connection.putheader("X-Auth-Token", self.api.get_token())
            connection.putheader("Content-Type", "application/octet-stream")
            connection.putheader("Content-Length", str(length))
            connection.endheaders()
            chunks = iter(chunks)
            while True:
                try:
                    chunk = next(chunks)
                except StopIteration:
                    break
                except OSError as exc:  # an I/O error of the disk: do not wait for Glance's answer
                    connection.close()
                    raise SourceReadError("reading the source failed after %d of %d bytes: %s" % (sent, length, exc))
                digest.update(chunk)
                view = memoryview(chunk)
                for start in range(0, len(view), SEND_SIZE):
                    piece = view[start:start + SEND_SIZE]
                    connection.send(piece)
                    if limiter:
                        limiter.consume(len(piece))
                sent += len(chunk)
                if progress:
                    progress.update(sent)
            if sent != length:
                raise GlanceError("internal error: sent %d bytes, announced %d" % (sent, length))
            response = connection.getresponse()
            body = response.read(65536)
        except (socket.error, http_client.HTTPException) as exc:
            answer, status = self._early_answer(connection)
            raise GlanceError("upload of image %s broke off after %d of %d bytes: %s%s"
                              % (image_id, sent, length, exc, answer), status)
        finally:
            connection.close()
        if response.status >= 400:
            raise GlanceError("Glance refused the data of image %s: HTTP %s %s" % (
                image_id, response.status, _text(body)), response.status)
        if progress:
            progress.update(sent)
        return digest.hexdigest()

    def _connection(self, endpoint):
        host = endpoint.hostname
        port = endpoint.port
        if endpoint.scheme == "https":
            verify = self.conn.session.verify
            context = ssl.create_default_context(cafile=verify if isinstance(verify, str) else None)
            if verify is False:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            cert = self.conn.session.cert
            if cert:
                if isinstance(cert, (tuple, list)):
                    context.load_cert_chain(cert[0], cert[1])
                else:
                    context.load_cert_chain(cert)
            return http_client.HTTPSConnection(host, port or 443, timeout=self.timeout, context=context)
        return http_client.HTTPConnection(host, port or 80, timeout=self.timeout)

    @staticmethod
    def _early_answer(connection):
        """Glance may answer (413, 401, ...) and close before all data is sent: read that answer."""
        try:
            response = connection.getresponse()
            return " (Glance answered HTTP %s %s)" % (response.status, _text(response.read(4096))), response.status
        except Exception:  # pylint: disable=broad-except
            return "", None


def _text(body):
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
    text = " ".join(text.split())
    return text[:300]
