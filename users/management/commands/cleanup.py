from django.core.management.base import BaseCommand
from django.utils import timezone

from users.housekeeping import housekeeping_run


class Command(BaseCommand):
    help = (
        "Delete what is no longer needed: expired sessions, throttle rows whose window and lock are over, "
        "rows of browsers whose session is gone, unfinished 2FA set-ups, old sent-mail log entries. "
        "Safe to run at any time; schedule it (hourly)."
    )

    def handle(self, *args, **options):
        removed = housekeeping_run(now=timezone.now())
        for kind, count in removed.items():
            self.stdout.write(f"{kind}: {count} deleted")
