from django.db import migrations, models
from django.db.models import F


def browsers_listed_before_stay_listed(apps, schema_editor):
    """Rows from before the column: they were listed as signed in, so they count as completed."""
    UserSession = apps.get_model("users", "UserSession")
    UserSession.objects.filter(completed_at=None).update(completed_at=F("signed_in_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("users", "0008_search_text_upper_case"),
    ]

    operations = [
        migrations.AddField(
            model_name="usersession",
            name="completed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.RunPython(browsers_listed_before_stay_listed, migrations.RunPython.noop),
    ]
