"""What a person does in the browser, in the help article's words, and the checks every page gets.

Elements are found only by role and visible name (`get_by_role`) or by label
(`get_by_label`): if a test cannot find something that way, neither can a screen reader.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import zxingcpp
from PIL import Image
from playwright.sync_api import Page, expect

from .conftest import ARTIFACTS, PASSWORD

AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
OATHTOOL = shutil.which("oathtool")

_shot_counter = iter(range(1, 10_000))


SIDEWAYS_SCROLLERS = """() => [...document.querySelectorAll('body *')].filter(el => {
    const overflow = getComputedStyle(el).overflowX;
    return (overflow === 'auto' || overflow === 'scroll') && el.scrollWidth > el.clientWidth + 1;
}).map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : ''))"""


def heading(page: Page, name: str):
    return page.get_by_role("heading", name=name, level=1)


def check_page(page: Page, name: str) -> None:
    """Screenshot, then zero axe-core WCAG 2.2 A/AA violations, no sideways scrolling (of the page
    or of any box in it), no CSP refusals."""
    page.wait_for_load_state("load")
    width = page.viewport_size["width"]
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{next(_shot_counter):03d}-{slug}-{width}px.png"), full_page=True)

    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, so the page's CSP stays in force for everything else.
        page.evaluate(page.axe_source)
    result = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']});
            return r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ' :: ' + n.failureSummary.replace(/\\s+/g, ' ')),
            }));
        }""",
        AXE_TAGS,
    )
    report = "\n".join(f"- {v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"]) for v in result)
    assert not result, f"axe-core found WCAG violations on {name} at {width}px:\n{report}"

    scroll_width = page.evaluate("() => document.scrollingElement.scrollWidth")
    assert scroll_width <= width, f"{name} scrolls sideways at {width}px (scrollWidth {scroll_width})"
    # A table in a scrolling box hides its right-hand columns with no hint, too.
    scrollers = page.evaluate(SIDEWAYS_SCROLLERS)
    assert not scrollers, f"part of {name} scrolls sideways at {width}px: {scrollers}"
    assert not page.csp_errors, f"the browser refused content under the CSP on {name}: {page.csp_errors}"


def gap_between(upper, lower) -> float:
    """Space between two boxes: vertical if `lower` sits below `upper`, else horizontal."""
    a, b = upper.bounding_box(), lower.bounding_box()
    if b["y"] >= a["y"] + a["height"] - 1:
        return b["y"] - (a["y"] + a["height"])
    return b["x"] - (a["x"] + a["width"])


def log_in(page: Page, username: str, password: str = PASSWORD, *, check: str | None = None) -> None:
    page.goto("/")
    expect(heading(page, "Log in")).to_be_visible()
    if check:
        check_page(page, check)
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def log_out(page: Page) -> None:
    page.get_by_role("button", name="Log out").click()
    expect(heading(page, "Log in")).to_be_visible()


def totp(secret: str, *, offset_steps: int = 0, at: float | None = None) -> str:
    """The code an authenticator app shows, by pyotp (an implementation independent of django-otp).

    A code for "now" is not read in the last 3 s of its 30 s step: typed and sent across the
    boundary, the server would match it one step back and remember that drift, and the next
    login's code for the step after would then fall outside its window (seen once in CI).
    """
    if at is None and offset_steps == 0 and time.time() % 30 > 27:
        time.sleep(30 - time.time() % 30 + 0.2)
    moment = (time.time() if at is None else at) + 30 * offset_steps
    return pyotp.TOTP(secret).at(int(moment))


def oathtool_code(secret: str, at: float) -> str:
    out = subprocess.run(
        [OATHTOOL, "--totp", "-b", secret, "-N", f"@{int(at)}"], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def decode_qr(png: bytes) -> str:
    """Read the QR code from screenshot pixels, the way a phone camera does."""
    found = [r for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)).convert("RGB")) if r.valid]
    qr = [r.text for r in found if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(qr) == 1, f"expected one QR code in the screenshot, found {[(r.format, r.text) for r in found]}"
    return qr[0]


def check_otpauth_uri(uri: str, *, username: str) -> str:
    """The key URI is what authenticator apps accept (Google's Key Uri Format); returns the secret."""
    parts = urlsplit(uri)
    assert parts.scheme == "otpauth" and parts.netloc == "totp", uri
    label = unquote(parts.path.lstrip("/"))
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    issuer = params.get("issuer", "")
    assert issuer.startswith("ClinicAuth"), uri
    assert label == f"{issuer}:{username}", uri
    assert params.get("algorithm", "SHA1") == "SHA1" and params.get("digits", "6") == "6"
    assert params.get("period", "30") == "30", uri
    secret = params["secret"]
    assert re.fullmatch(r"[A-Z2-7]{16,}", secret), "secret must be unpadded base32"
    assert len(secret) * 5 >= 160, "RFC 4226 recommends 160-bit secrets"
    otp = pyotp.parse_uri(uri)  # an independent parser of the same format accepts it
    assert otp.secret == secret and otp.issuer == issuer and otp.name == username
    return secret


def manual_key(page: Page) -> str:
    """The key printed for typing in by hand, without the spaces that group it."""
    region = page.get_by_role("listitem").filter(has=page.get_by_role("heading", name="Scan the QR Code"))
    return region.get_by_role("code").inner_text().replace(" ", "").upper()


def scan_setup_page(page: Page, *, username: str) -> str:
    """Screenshot the set-up page, decode the QR, check it against the manual key; the secret."""
    expect(heading(page, "Set up Two-Factor Authentication")).to_be_visible()
    qr = page.get_by_role("img", name=re.compile("QR code"))
    expect(qr).to_be_visible()
    qr.evaluate("img => img.decode()")
    secret = check_otpauth_uri(decode_qr(page.screenshot(full_page=True)), username=username)
    typed = manual_key(page)
    assert typed == secret, "the manual-entry key differs from the QR code's"
    now = time.time()
    assert totp(typed, at=now) == totp(secret, at=now)
    return secret


def recovery_codes(page: Page) -> list[str]:
    expect(heading(page, "Your recovery codes")).to_be_visible()
    codes_list = page.get_by_role("list").filter(has=page.get_by_role("code"))
    codes = [c.strip() for c in codes_list.get_by_role("code").all_inner_texts()]
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    return codes


def enter_setup_code(page: Page, code: str) -> None:
    page.get_by_label("Verification Code").fill(code)
    page.get_by_role("button", name="Enable 2FA").click()


def expect_2fa_active(page: Page) -> list[str]:
    """After "Enable 2FA": the success message and the recovery codes; returns the codes."""
    expect(page.get_by_role("status").filter(has_text="2FA is now active")).to_be_visible()
    return recovery_codes(page)


def enable_2fa_from_profile(page: Page, *, username: str, check: bool = False) -> tuple[str, list[str]]:
    """Help article, "Enabling 2FA Individually", steps 1-8; returns (secret, recovery codes)."""
    page.get_by_role("link", name="My Profile").click()
    expect(heading(page, "My Profile")).to_be_visible()
    if check:
        check_page(page, "profile")
    section = page.get_by_role("region", name="Two-Factor Authentication")
    section.get_by_role("link", name="Enable Two-Factor Authentication").click()
    secret = scan_setup_page(page, username=username)
    if check:
        check_page(page, "setup")
    enter_setup_code(page, totp(secret))
    codes = expect_2fa_active(page)
    if check:
        check_page(page, "recovery codes")
    continue_after_codes(page)
    return secret, codes


SAVED_CODES_QUESTION = "Have you saved your codes? They will not be shown again."


def continue_after_codes(page: Page, *, key: str | None = None) -> None:
    """Continue from the recovery codes, answering yes to "Have you saved your codes?"."""
    asked = []

    def answer(dialog) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", answer)
    if key:
        page.keyboard.press(key)
    else:
        page.get_by_role("link", name="Continue").click()
    page.wait_for_url(lambda url: "recovery-codes" not in url)
    assert asked == [SAVED_CODES_QUESTION], asked


def pass_challenge(page: Page, secret: str, *, check: str | None = None) -> None:
    """The next login: the code of the next 30 s step (the current one may be spent already)."""
    expect(heading(page, "Two-Factor Authentication")).to_be_visible()
    if check:
        check_page(page, check)
    page.get_by_label("Verification Code").fill(totp(secret, offset_steps=1))
    page.get_by_role("button", name="Verify").click()
    expect(heading(page, re.compile("^Welcome"))).to_be_visible()


class Mailbox:
    """What the served app sent, read from its file-based e-mail backend (one file per connection)."""

    def __init__(self, folder):
        self.folder = folder

    def messages(self) -> list:
        import email
        from email import policy

        found = []
        for path in sorted(self.folder.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
            # The backend writes each message followed by a line of 79 dashes.
            for chunk in path.read_bytes().split(b"\n" + b"-" * 79 + b"\n"):
                if chunk.strip():
                    found.append(email.message_from_bytes(chunk.lstrip(b"\n"), policy=policy.default))
        return found

    def link_to(self, address: str, path_prefix: str, *, timeout: float = 10.0) -> str:
        """The path of the newest link under path_prefix e-mailed to address."""
        deadline = time.monotonic() + timeout
        while True:
            for message in reversed(self.messages()):
                if address in str(message["To"]):
                    body = message.get_body(preferencelist=("plain",)).get_content()
                    match = re.search(r"https?://[^/\s]+(" + re.escape(path_prefix) + r"\S+)", body)
                    if match:
                        return match.group(1)
            if time.monotonic() > deadline:
                raise AssertionError(f"no e-mail to {address} with a {path_prefix} link")
            time.sleep(0.2)

    def count_to(self, address: str) -> int:
        return sum(address in str(message["To"]) for message in self.messages())
