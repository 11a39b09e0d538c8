# The total used to be summed on every read; store it, starting with existing orders.

from decimal import Decimal

from django.db import migrations


def compute_totals(apps, schema_editor):
    db = schema_editor.connection.alias
    Order = apps.get_model("orders", "Order")
    for order in Order.objects.using(db).prefetch_related("lines").iterator(chunk_size=500):
        order.total = sum(
            (line.unit_price * line.quantity for line in order.lines.all()), Decimal(0)
        )
        order.save(update_fields=["total"])


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_order_total"),
    ]

    operations = [
        migrations.RunPython(compute_totals, migrations.RunPython.noop),
    ]
