# Users made before profiles existed get one, and every profile a display name: the
# user's full name, else the user name.

from django.conf import settings
from django.db import migrations


def backfill_profiles(apps, schema_editor):
    db = schema_editor.connection.alias
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Profile = apps.get_model("accounts", "Profile")
    for user in User.objects.using(db).filter(profile__isnull=True).iterator():
        Profile.objects.using(db).create(user=user)
    for profile in Profile.objects.using(db).filter(display_name="").select_related("user"):
        user = profile.user
        profile.display_name = f"{user.first_name} {user.last_name}".strip() or user.username
        profile.save(update_fields=["display_name"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_profile_display_name"),
    ]

    operations = [
        migrations.RunPython(backfill_profiles, migrations.RunPython.noop),
    ]
