from django.core.management.base import BaseCommand
from django.utils import timezone

from users.housekeeping import housekeeping_run, mail_failed_requeue


class Command(BaseCommand):
    help = (
        "Delete what is no longer needed: expired sessions, throttle rows whose window and lock are over, "
        "rows of browsers whose session is gone, unfinished 2FA set-ups, old sent-mail log entries; and queue again the e-mail whose send failed. "
        "Safe to run at any time; schedule it (hourly)."
    )

    def handle(self, *args, **options):
        removed = housekeeping_run(now=timezone.now())
        for kind, count in removed.items():
            self.stdout.write(f"{kind}: {count} deleted")
        self.stdout.write(f"failed e-mails: {mail_failed_requeue()} queued again")
