"""HTTPS sessions through HAProxy for the cluster suite: one cookie jar per browser, no redirect
following, and a way to ask for one node (the test-only `X-Test-Node`) and see which answered."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.cookiejar import CookieJar
from types import SimpleNamespace

from tests.concurrency.harness import _NoRedirect, free_port  # noqa: F401 (free_port: for conftest)
from tests.conftest import PASSWORD, totp_for

NODES = ("node1", "node2")
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
LOGIN = "/accounts/login/"
CHALLENGE = "/accounts/two-factor/"


def wait_for(condition, *, seconds: float, what: str) -> float:
    """Poll until condition() is true; returns how long it took."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        try:
            if condition():
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"not within {seconds} s: {what}")


def other(node: str) -> str:
    return NODES[1 - NODES.index(node)]


@dataclass
class Response:
    status: int
    location: str
    text: str
    served_by: str

    @property
    def csrf(self) -> str:
        match = CSRF_RE.search(self.text)
        assert match, (self.status, self.text[:500])
        return match.group(1)


class ClusterBrowser:
    def __init__(self, base: str, ssl_context):
        self.base = base
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.HTTPSHandler(context=ssl_context), _NoRedirect
        )

    def request(self, path: str, data: dict | None = None, *, node: str | None = None, timeout: float = 30) -> Response:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        # A browser's form post names its origin; Django's CSRF check for HTTPS wants it.
        headers = {"Origin": self.base} if data is not None else {}
        if node:
            headers["X-Test-Node"] = node
        request = urllib.request.Request(self.base + path, data=body, headers=headers)
        try:
            with self.opener.open(request, timeout=timeout) as response:
                return Response(response.status, response.headers.get("Location", ""), response.read().decode(),
                                response.headers.get("X-Served-By", ""))
        except urllib.error.HTTPError as error:
            return Response(error.code, error.headers.get("Location", ""), error.read().decode(errors="replace"),
                            error.headers.get("X-Served-By", ""))

    def post(self, path: str, fields: dict, *, node: str | None = None, csrf_from: str | None = None) -> Response:
        page = self.request(csrf_from or path, node=node)
        assert page.status == 200, (csrf_from or path, page.status, page.location)
        return self.request(path, {"csrfmiddlewaretoken": page.csrf, **fields}, node=node)

    def password(self, username: str, *, node: str | None = None, password: str = PASSWORD) -> Response:
        return self.post(LOGIN, {"username": username, "password": password}, node=node)

    def code(self, code: str, *, node: str | None = None) -> Response:
        return self.post(CHALLENGE, {"code": code, "next": "/home/"}, node=node)


def code_for(key: bytes, *, offset_steps: int = 0) -> str:
    return totp_for(SimpleNamespace(bin_key=key), offset_steps=offset_steps)
