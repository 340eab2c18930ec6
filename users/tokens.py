"""Password-reset links: Django's tokens, made with a secret that includes the member's session nonce."""

from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator


class MemberResetTokenGenerator(PasswordResetTokenGenerator):
    """Django's reset token, which dies when the password changes, the member signs in, or
    PASSWORD_RESET_TIMEOUT passes; and also when every session of the member is ended (deactivation,
    a 2FA reset, a password change elsewhere), since that rotates their session nonce. A link
    made before a deactivation stays dead after a reactivation."""

    def make_token(self, user):
        return self.for_member(user).make_token(user)

    def check_token(self, user, token):
        return user is not None and self.for_member(user).check_token(user, token)

    def for_member(self, user) -> PasswordResetTokenGenerator:
        generator = PasswordResetTokenGenerator()
        generator.secret = f"{self.secret}:{user.session_nonce}"
        generator.secret_fallbacks = [f"{secret}:{user.session_nonce}" for secret in settings.SECRET_KEY_FALLBACKS]
        return generator


member_reset_tokens = MemberResetTokenGenerator()
