"""The request a log line belongs to: its id and the browser's user agent, on every record.

Services never see the request, yet a security log line should say which request and which browser
it came from; the middleware keeps both in context variables for the request's duration, and the
logging filter copies them onto each record. Behind a trusted proxy (TRUSTED_PROXY_COUNT) the
proxy's X-Request-ID is kept, so the proxy's and the app's logs join up; otherwise a new id."""

from __future__ import annotations

import logging
import re
import uuid
from contextvars import ContextVar

from django.conf import settings
from django.http import HttpRequest, HttpResponse

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._-]{8,64}")
USER_AGENT_LIMIT = 300

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
user_agent: ContextVar[str | None] = ContextVar("user_agent", default=None)


def incoming_request_id(request: HttpRequest) -> str:
    given = request.headers.get(REQUEST_ID_HEADER, "")
    if settings.CLINICAUTH_TRUSTED_PROXY_COUNT > 0 and REQUEST_ID_SHAPE.fullmatch(given):
        return given
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        this_request = incoming_request_id(request)
        tokens = (
            request_id.set(this_request),
            user_agent.set(request.headers.get("User-Agent", "")[:USER_AGENT_LIMIT]),
        )
        try:
            response = self.get_response(request)
        finally:
            request_id.reset(tokens[0])
            user_agent.reset(tokens[1])
        response.headers.setdefault(REQUEST_ID_HEADER, this_request)
        return response


class RequestContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.user_agent = user_agent.get()
        return True
