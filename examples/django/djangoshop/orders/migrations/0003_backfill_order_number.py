# Step 2 of 3: existing orders are numbered after their id, as new ones are.

from django.db import migrations


def number_orders(apps, schema_editor):
    db = schema_editor.connection.alias
    Order = apps.get_model("orders", "Order")
    for order in Order.objects.using(db).filter(number__isnull=True).iterator():
        order.number = f"ORD-{order.pk:06d}"
        order.save(update_fields=["number"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0002_order_number"),
    ]

    operations = [
        migrations.RunPython(number_orders, migrations.RunPython.noop),
    ]
