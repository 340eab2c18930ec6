import re

from django import forms

SEPARATORS = re.compile(r"[\s\-]+")  # what people type between a code's groups ("123 456", "ABCDE-FGHJK")


def code_widget(*, numeric: bool = True, autofocus: bool = False) -> forms.TextInput:
    # Autofocus only where the code box is the whole page (the challenge): elsewhere it
    # scrolls the page past its heading and instructions, or greets people with "Disable".
    attrs = {"autocomplete": "one-time-code", "autocapitalize": "off", "spellcheck": "false"}
    if autofocus:
        attrs["autofocus"] = True
    if numeric:
        attrs.update({"inputmode": "numeric", "pattern": r"[0-9 ]*"})
    return forms.TextInput(attrs=attrs)
