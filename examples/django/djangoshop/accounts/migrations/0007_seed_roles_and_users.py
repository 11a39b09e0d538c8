# The shop's roles (groups with their permissions) and its demo users. Passwords are
# stored hashed (PBKDF2, as Django 3.2 hashes them); each is "<username>-password".
#
# Model permissions are normally created after all migrations ran (post_migrate); they
# are created here first so that the groups can be given them.

from django.conf import settings
from django.db import migrations

ROLES = {
    "managers": [
        "catalog.add_category",
        "catalog.change_category",
        "catalog.delete_category",
        "catalog.add_product",
        "catalog.change_product",
        "catalog.delete_product",
        "catalog.add_tag",
        "catalog.change_tag",
        "catalog.delete_tag",
        "inventory.add_warehouse",
        "inventory.change_warehouse",
        "inventory.delete_warehouse",
        "inventory.add_stockitem",
        "inventory.change_stockitem",
        "inventory.delete_stockitem",
        "orders.view_order",
    ],
    "clerks": [
        "orders.view_order",
        "orders.change_order",
        "orders.ship_order",
        "inventory.change_stockitem",
    ],
    "customers": [],
}

USERS = [
    # username, e-mail, first name, last name, group, superuser, password hash
    (
        "admin",
        "admin@shop.example",
        "Ada",
        "Admin",
        None,
        True,
        "pbkdf2_sha256$260000$497c1da7e76e51219727f8$kC7Zg4iMG0nSMDv8YbcLIBY7buxXR5NP1/NDNyhkFUA=",
    ),
    (
        "manager",
        "manager@shop.example",
        "Max",
        "Manager",
        "managers",
        False,
        "pbkdf2_sha256$260000$5859330734efb73b51184f$hGcrOcO7g7HFcNVmSDe81VWSPkLhEMjB0DdE+q+fqOU=",
    ),
    (
        "clerk",
        "clerk@shop.example",
        "Cleo",
        "Clerk",
        "clerks",
        False,
        "pbkdf2_sha256$260000$82a0906c17e65760924d47$5iuWr87rB6r6TbskAecIUOlT/l0aHYiEjEwufLZ4ycQ=",
    ),
    (
        "alice",
        "alice@shop.example",
        "Alice",
        "Archer",
        "customers",
        False,
        "pbkdf2_sha256$260000$ec025835a63b98f6fc1810$nHLDQgmEgUzLBXZ5n8uk5JJxoK0gY3HH8iviOX+UOL0=",
    ),
    (
        "bob",
        "bob@shop.example",
        "Bob",
        "Baker",
        "customers",
        False,
        "pbkdf2_sha256$260000$64aa9fcde6d41994ff1c9c$kYIZrLdbKMDUwo1xKxzPk2T/ba1vJ8oKXnZU48HWSz8=",
    ),
]


def seed(apps, schema_editor):
    db = schema_editor.connection.alias
    from django.contrib.auth.management import create_permissions

    for config in apps.get_app_configs():
        config.models_module = True
        create_permissions(config, apps=apps, verbosity=0, using=db)
        config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    Profile = apps.get_model("accounts", "Profile")
    for name, codes in ROLES.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        for code in codes:
            app_label, codename = code.split(".")
            group.permissions.add(
                Permission.objects.using(db).get(
                    content_type__app_label=app_label, codename=codename
                )
            )
    for username, email, first, last, group, superuser, password in USERS:
        user, created = User.objects.using(db).get_or_create(
            username=username,
            defaults={
                "email": email,
                "first_name": first,
                "last_name": last,
                "password": password,
                "is_staff": superuser,
                "is_superuser": superuser,
            },
        )
        if created:
            Profile.objects.using(db).create(user=user, display_name=f"{first} {last}")
            if group:
                user.groups.add(Group.objects.using(db).get(name=group))


def unseed(apps, schema_editor):
    db = schema_editor.connection.alias
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    User.objects.using(db).filter(username__in=[u[0] for u in USERS]).delete()
    apps.get_model("auth", "Group").objects.using(db).filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0006_profile_created_at"),
        ("audit", "0005_auditevent_entity_index"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("catalog", "0014_product_category_active_index"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("inventory", "0010_model_options"),
        ("orders", "0015_model_options"),
    ]

    operations = [
        migrations.RunPython(seed, unseed),
    ]
