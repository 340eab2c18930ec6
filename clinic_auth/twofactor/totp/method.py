"""The authenticator app as a way to pass the sign-in code page."""

from ..codes import CodeMethod
from .forms import TOTP_PATTERN
from .services import totp_verify

METHOD = CodeMethod(name="totp", pattern=TOTP_PATTERN, verify=totp_verify)
