"""A mail transport as slow as a bad SMTP relay (one second a message), delivering to mail.outbox."""

import time

from django.core.mail.backends.locmem import EmailBackend

SECONDS_PER_MESSAGE = 1.0


class SlowRelayBackend(EmailBackend):
    def send_messages(self, messages):
        time.sleep(SECONDS_PER_MESSAGE * len(messages))
        return super().send_messages(messages)
