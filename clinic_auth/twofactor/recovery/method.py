"""Recovery codes as a way to pass the sign-in code page."""

import re

from ..codes import CodeMethod
from .services import RECOVERY_ALPHABET, RECOVERY_CODE_LENGTH, recovery_code_verify
from .views import after_recovery_sign_in

RECOVERY_PATTERN = re.compile(f"[{RECOVERY_ALPHABET}]{{{RECOVERY_CODE_LENGTH}}}")

METHOD = CodeMethod(
    name="recovery", pattern=RECOVERY_PATTERN, upper=True, verify=recovery_code_verify, after_sign_in=after_recovery_sign_in
)
