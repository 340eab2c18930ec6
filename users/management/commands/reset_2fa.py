from django.core.management.base import BaseCommand, CommandError

from clinic_auth.twofactor import flows
from clinic_auth.twofactor.models import AuditEvent
from users.models import User


class Command(BaseCommand):
    help = "Operator reset: remove a user's authenticator and recovery codes and end their sessions."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username: str, **options):
        try:
            user = User.objects.get(username=username)
        except User.DoesNotExist:
            raise CommandError(f"No user called {username!r}.")
        disabled = flows.disable_2fa(
            user=user, actor=None, request=None, action=AuditEvent.Action.DISABLED_BY_OPERATOR
        )
        if not disabled:
            self.stdout.write(f"{username} has no two-factor authentication set up; nothing changed.")
            return
        self.stdout.write(
            self.style.SUCCESS(f"Two-factor authentication reset for {username}; all their sessions have ended.")
        )
        if flows.clinic_requires_2fa(user):
            self.stdout.write("Their clinic requires 2FA, so they will set it up again at their next login.")
