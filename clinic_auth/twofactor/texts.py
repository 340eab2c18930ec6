"""What 2FA says to people on screen, in one place and through gettext."""

from __future__ import annotations

import math
from datetime import date, datetime

from django.conf import settings
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from . import codes

MESSAGES = {
    "code_invalid": _("That code is not valid. Check your authenticator app and try again."),
    "code_replayed": _("That code has already been used. Wait for the next code in your app."),
    "code_locked_minutes": _("Too many incorrect codes. Code entry is locked for {minutes} minutes."),
    "code_hard_locked": _("Too many incorrect codes. Code entry is locked: ask your clinic administrator to reset your two-factor authentication."),
    "setup_code_invalid": _("That code did not match. Scan the QR code again or check the time on your phone, then enter the new code."),
    "setup_expired": _("Your set-up expired, so this page now shows a new QR code. Remove the old ClinicAuth entry from your authenticator app, then scan the new code."),
    "setup_superseded": _("Two-factor authentication was just set up for your account in another window, so this set-up was cancelled. If that wasn't you, ask your clinic administrator to reset your two-factor authentication."),
    "codes_already_shown": _("These recovery codes were already shown once and cannot be shown again."),
    "login_expired": _("Your sign-in took too long. Log in again."),
    "enabled": _("2FA is now active: two-factor authentication is enabled for your account."),
    "already_enabled": _("Two-factor authentication is already active on your account."),
    "disabled_self": _("Two-factor authentication is now disabled for your account."),
    "disable_refused_mandatory": _("Your clinic requires two-factor authentication. Only a clinic administrator can reset it."),
    "recovery_regenerated": _("New recovery codes created. Your old codes no longer work."),
    "clinic_saved": _("Clinic settings saved."),
    "user_2fa_disabled": _("Two-factor authentication is now disabled for {name}. They have been signed out everywhere."),
    "user_2fa_disabled_mandatory": _("{name} will be asked to set up two-factor authentication again at their next login."),
    "user_has_no_2fa": _("{name} does not have two-factor authentication set up, so there is nothing to disable."),
    "disable_own_refused": _("You cannot disable your own two-factor authentication here. Use My Profile instead."),
    "password_changed": _("Your password has been changed. You have been signed out everywhere else."),
    "admin_site_operators_only": _("The administration site is for system operators only."),
    "app_added": _("Authenticator app added. You can now sign in with a code from it or with your passkey or security key."),
    "passkey_wrong_step": _("A passkey or security key can't be used at this step. Reload the page and try again."),
    "passkey_expired": _("That took too long. Try your passkey or security key again."),
    "passkey_too_large": _("That request is too large to be a passkey's answer."),
    "key_added": _("Passkey or security key “{name}” added."),
    "key_renamed": _("Renamed to “{name}”."),
    "key_removed": _("Passkey or security key “{name}” removed."),
    "key_removed_last": _("Passkey or security key “{name}” removed. It was your only two-factor method, so two-factor authentication is now off."),
    "key_last_required": _("This is your only two-factor method and your clinic requires two-factor authentication. Add another method before you remove it."),
    "key_not_found": _("That passkey or security key no longer exists."),
    "switched_user": _("{name} has been signed out of this browser."),
    "action_new_codes": _("generate new recovery codes"),
    "action_add_app": _("add an authenticator app"),
    "action_add_key": _("add a passkey or security key"),
    "action_remove_key": _("remove a passkey or security key"),
    "action_mandatory_off": _("turn Mandatory 2FA off for your clinic"),
    "action_disable_member": _("disable two-factor authentication for {name}"),
    "action_issue_code": _("issue a one-time sign-in code for {name}"),
    "action_end_member_sessions": _("sign {name} out"),
    "session_not_found": _("That browser is no longer signed in."),
    "login_throttled": _("Too many failed sign-in attempts. Try again in {minutes} minutes."),
    "password_wrong": _("That password is not right."),
    "nothing_to_confirm": _("There is nothing waiting to be confirmed."),
    "action_cancelled": _("Cancelled: nothing was changed."),
    "action_set_up_2fa": _("set up two-factor authentication"),
    "session_expired_idle": _(
        "You were signed out after {duration} without activity, for your security. Log in again to carry on where you were."
    ),
    "session_expired_absolute": _(
        "You were signed out: every sign-in ends after {duration}, however active. Log in again to carry on where you were."
    ),
    "code_wait_a_second": _("That code didn't work. Wait a second and try again."),
    "code_wait_seconds": _("That code didn't work. Wait {seconds} seconds and try again."),
    "recovery_code_invalid": _(
        "That recovery code didn't work. Check it against the codes you saved: each one works only once."
    ),
    "logged_out": _("You have logged out."),
    "browser_ended_by_admin": _("Your clinic administrator signed this browser out. Log in again."),
    "browser_ended_by_user": _("You signed this browser out from another browser. Log in again."),
    "signed_out_elsewhere": _(
        "You were signed out because your sessions were ended: your clinic administrator reset your "
        "two-factor authentication, or your password was changed on another computer. Log in again."
    ),
    "signin_code_used": _("You signed in with a one-time sign-in code. Set up your new authenticator app now: your old one keeps working until the new one is confirmed."),
    "app_replaced": _("Your new authenticator app is set up. Codes from your old app no longer work."),
    "signin_code_self_refused": _("You cannot issue a one-time sign-in code for yourself."),
    "signin_code_needs_2fa": _("{name} has no two-factor authentication to sign in past, so they need no code."),
    "reminders_sent": _("Reminders sent."),
    "grace_dismissed": _("Reminder hidden for this session."),
}


def message(key: str, **kwargs) -> str:
    return str(MESSAGES[key]).format(**kwargs)


def throttled_message(until: datetime) -> str:
    """Too many wrong passwords: for how many minutes (at least one) the throttle holds."""
    minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
    return message("login_throttled", minutes=minutes)


def locked_message(locked_until: datetime | None, *, failures: int | None = None) -> str:
    """What to tell someone whose code entry is locked (None: until a reset).

    The short delays after the first few wrong codes are not "too many": saying so after
    one typo alarms people, so those get a plain "wait and try again".
    """
    if locked_until is None:
        return message("code_hard_locked")
    seconds = max(1, math.ceil((locked_until - timezone.now()).total_seconds()))
    if failures is not None and failures < settings.CLINICAUTH_CODE_LOCKOUT_FAILURES:
        if seconds == 1:
            return message("code_wait_a_second")
        return message("code_wait_seconds", seconds=seconds)
    if seconds > 120:
        return message("code_locked_minutes", minutes=(seconds + 59) // 60)
    return ngettext(
        "Too many incorrect codes. Try again in {seconds} second.",
        "Too many incorrect codes. Try again in {seconds} seconds.",
        seconds,
    ).format(seconds=seconds)


def code_refused(refusal: codes.CodeRefused, *, at_setup: bool = False) -> str:
    if isinstance(refusal, codes.CodeLocked):
        return locked_message(refusal.until, failures=refusal.failures)
    if isinstance(refusal, codes.CodeReplayed):
        return message("code_replayed")
    if at_setup:
        return message("setup_code_invalid")
    return message("recovery_code_invalid" if getattr(refusal, "method", "totp") == "recovery" else "code_invalid")


def sessions_ended(count: int, *, name: str | None = None) -> str:
    if name is None:
        return ngettext("Signed out of {count} other browser.", "Signed out of {count} other browsers.", count).format(count=count)
    return ngettext(
        "{name} has been signed out of {count} browser.", "{name} has been signed out of {count} browsers.", count
    ).format(count=count, name=name)


def methods_summary(*, has_app: bool, key_count: int) -> str:
    """A member's sign-in methods in a few words ("App, 2 keys"), on the Users list and the member's page."""
    parts = [gettext("App")] if has_app else []
    if key_count:
        parts.append(ngettext("%(count)d key", "%(count)d keys", key_count) % {"count": key_count})
    return ", ".join(parts)


def recovery_code_used(left: int) -> str:
    return ngettext(
        "You used a recovery code. {left} recovery code left.",
        "You used a recovery code. {left} recovery codes left.",
        left,
    ).format(left=left)


def grace_banner(*, starts_on: date, days_left: int) -> str:
    """The grace-period banner's sentence (the "Set up now" link follows it)."""
    return ngettext(
        "Your clinic requires two-factor authentication from {date} ({days} day left).",
        "Your clinic requires two-factor authentication from {date} ({days} days left).",
        days_left,
    ).format(date=date_format(starts_on, "j M"), days=days_left)


def reminders_sent(count: int) -> str:
    return ngettext(
        "Reminder sent to {count} member who has not set up 2FA.",
        "Reminders sent to {count} members who have not set up 2FA.",
        count,
    ).format(count=count)


def members_to_set_up(count: int) -> str:
    return ngettext(
        "{count} member will be asked to set up 2FA.",
        "{count} members will be asked to set up 2FA.",
        count,
    ).format(count=count)


def mandatory_from_saved(starts_on, count: int) -> str:
    """After saving Mandatory 2FA with a date still to come."""
    return ngettext(
        "Mandatory 2FA from {date}: {count} member still to set up sees a reminder until then.",
        "Mandatory 2FA from {date}: {count} members still to set up see a reminder until then.",
        count,
    ).format(date=date_format(starts_on, "j M"), count=count)


def reminders_too_soon(next_at: datetime) -> str:
    return str(_("Reminders were sent less than 24 hours ago. You can send them again after {when}.")).format(
        when=date_format(timezone.localtime(next_at), "j M, H:i T")
    )


def session_ended(limit: str) -> str:
    """Why the session ended, for the login page: "idle" or "absolute" (session.timed_out_else_touch)."""
    if limit == "absolute":
        return message("session_expired_absolute", duration=duration(settings.SESSION_ABSOLUTE_TIMEOUT))
    return message("session_expired_idle", duration=duration(settings.SESSION_IDLE_TIMEOUT))


def duration(seconds: int) -> str:
    """A timeout in words: "12 hours", "90 minutes"."""
    if seconds % 3600 == 0:
        hours = seconds // 3600
        return ngettext("{count} hour", "{count} hours", hours).format(count=hours)
    minutes = max(1, round(seconds / 60))
    return ngettext("{count} minute", "{count} minutes", minutes).format(count=minutes)
