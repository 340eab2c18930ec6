"""User.twofa_enrolled: a stored copy of devices.is_enrolled(user), indexed for the Users list.

The name index gains username, the last column of the name sorts, so a deep page's key is
read along the index instead of sorting the clinic.

users.receivers keeps it exact from here on; this migration sets it for the users that exist.
The rule is the one of devices.enrolled_q, written against the historical models: at least one
confirmed authenticator app or passkey / security key.
"""

from django.db import migrations, models


def backfill(apps, schema_editor):
    User = apps.get_model("users", "User")
    app = apps.get_model("twofactor", "EncryptedTOTPDevice").objects.filter(user=models.OuterRef("pk"), confirmed=True)
    key = apps.get_model("django_otp_webauthn", "WebAuthnCredential").objects.filter(user=models.OuterRef("pk"), confirmed=True)
    User.objects.filter(models.Exists(app) | models.Exists(key)).update(twofa_enrolled=True)


class Migration(migrations.Migration):

    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("clinics", "0002_issue14_enforcement_date_time_zone_reminders"),
        ("users", "0005_invitation"),
        ("twofactor", "0007_issue14_signin_code_and_audit_actions"),
        ("django_otp_webauthn", "0004_webauthnuserhandle"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="twofa_enrolled",
            field=models.BooleanField(default=False, editable=False),
        ),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(
                fields=["clinic", "twofa_enrolled", "last_name", "first_name", "username"], name="user_clinic_2fa_name_idx"
            ),
        ),
        migrations.RemoveIndex(model_name="user", name="user_clinic_name_idx"),
        migrations.AddIndex(
            model_name="user",
            index=models.Index(fields=["clinic", "last_name", "first_name", "username"], name="user_clinic_fullname_idx"),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
