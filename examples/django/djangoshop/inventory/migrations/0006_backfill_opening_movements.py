# Stock existed before movements did: each item gets an opening receipt for what it holds,
# so that an item's quantity is always the sum of its movements.

from django.db import migrations


def opening_movements(apps, schema_editor):
    db = schema_editor.connection.alias
    StockItem = apps.get_model("inventory", "StockItem")
    StockMovement = apps.get_model("inventory", "StockMovement")
    StockMovement.objects.using(db).bulk_create(
        StockMovement(item=item, delta=item.quantity, reason="receipt")
        for item in StockItem.objects.using(db).filter(quantity__gt=0, movements__isnull=True)
    )


def remove_opening_movements(apps, schema_editor):
    db = schema_editor.connection.alias
    apps.get_model("inventory", "StockMovement").objects.using(db).filter(reason="receipt").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("inventory", "0005_stockmovement"),
    ]

    operations = [
        migrations.RunPython(opening_movements, remove_opening_movements),
    ]
