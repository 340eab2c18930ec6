from django.core.management.base import BaseCommand, CommandError

from clinic_auth.twofactor import policy, services
from clinic_auth.twofactor.models import AuditEvent
from users.models import User


class Command(BaseCommand):
    help = (
        "Operator reset: remove every authenticator of the users (confirmed or still being set up), "
        "their recovery codes and code lockouts, and end their sessions."
    )

    def add_arguments(self, parser):
        parser.add_argument("usernames", nargs="+", metavar="username")

    def handle(self, *args, usernames: list[str], **options):
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
