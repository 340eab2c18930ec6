"""A one-time sign-in code from a clinic admin as a way to pass the sign-in code page."""

import re

from ..codes import CodeMethod
from .services import signin_code_verify
from .views import after_signin_code_sign_in

SIGNIN_CODE_PATTERN = re.compile(r"[0-9]{8}")

METHOD = CodeMethod(name="signin", pattern=SIGNIN_CODE_PATTERN, verify=signin_code_verify, after_sign_in=after_signin_code_sign_in)
