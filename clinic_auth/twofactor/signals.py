"""What the 2FA core tells the apps built on it, without importing them."""

from django.dispatch import Signal

# A sign-in is complete: the second factor passed, or the password where none applies. Sent with
# `request` (its session key is the browser's final one) and `user`.
sign_in_completed = Signal()
