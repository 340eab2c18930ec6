from django.core.management.base import BaseCommand, CommandError

from clinic_auth.twofactor import devices, policy, services
from clinic_auth.twofactor.models import AuditEvent
from users.models import User


class Command(BaseCommand):
    help = (
        "Operator reset: remove every authenticator of the users (confirmed or still being set up), "
        "their recovery codes and code lockouts, and end their sessions."
    )

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="*", metavar="username")
        parser.add_argument(
            "--undecryptable",
            action="store_true",
            help="Also every user whose authenticator app secret TOTP_ENCRYPTION_KEYS cannot decrypt "
            "(after the key was lost; `check --deploy` reports them as twofactor.E011).",
        )

    def handle(self, *args, usernames: list[str], undecryptable: bool, **options):
        if undecryptable:
            usernames = [*usernames, *devices.undecryptable_totp_owners()[1]]
            if not usernames:
                self.stdout.write("Every stored authenticator app secret decrypts: nobody to reset.")
                return
        elif not usernames:
            raise CommandError("Name at least one username, or use --undecryptable.")
        unknown = []
        for username in usernames:
            try:
                user = User.objects.get(username=username)
            except User.DoesNotExist:
                unknown.append(username)
                continue
            self.reset(user)
        if unknown:
            # The known users above are reset all the same; the exit status says not all were.
            raise CommandError(f"No user called {', '.join(repr(name) for name in unknown)}.")

    def reset(self, user: User) -> None:
        removed = services.twofa_reset(user=user, actor=None, action=AuditEvent.Action.DISABLED_BY_OPERATOR)
        if not removed.anything_to_reset:
            self.stdout.write(f"{user.username} has no two-factor authentication set up; nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Two-factor authentication reset for {user.username} (removed: {removed.describe()}); "
                "all their sessions have ended."
            )
        )
        if policy.clinic_requires_2fa(user):
            self.stdout.write("Their clinic requires 2FA, so they will set it up again at their next login.")
