"""An index for the Users summary: active and enrolled members of a clinic, counted from it alone."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('auth', '0012_alter_user_first_name_max_length'),
        ('clinics', '0002_issue14_enforcement_date_time_zone_reminders'),
        ('users', '0009_usersession_completed_at'),
    ]

    operations = [
        migrations.AddIndex(
            model_name='user',
            index=models.Index(fields=['clinic', 'is_active', 'twofa_enrolled'], name='user_clinic_active_2fa_idx'),
        ),
    ]
