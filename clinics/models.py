from django.db import models


class Clinic(models.Model):
    name = models.CharField(max_length=120, unique=True)
    address = models.CharField(max_length=255, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    mandatory_2fa = models.BooleanField(
        "Mandatory 2FA",
        default=False,
        help_text="Every user of this clinic must set up two-factor authentication before using the application.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
