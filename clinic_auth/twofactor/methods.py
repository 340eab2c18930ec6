"""The ways to pass the sign-in code page with a typed code, in the order a typed code is tried."""

from __future__ import annotations

from .codes import CodeMethod
from .recovery.method import METHOD as RECOVERY
from .signin_code.method import METHOD as SIGNIN_CODE
from .totp.method import METHOD as TOTP

CODE_METHODS: tuple[CodeMethod, ...] = (TOTP, SIGNIN_CODE, RECOVERY)


def method_for(typed: str) -> tuple[CodeMethod, str] | None:
    """The method whose codes look like `typed` (already without spaces and dashes), and its token."""
    for method in CODE_METHODS:
        token = method.token_from(typed)
        if token is not None:
            return method, token
    return None
