# Before a product may appear only once per order, duplicate lines are merged into one.
# A migration of its own: PostgreSQL refuses ALTER TABLE after row changes in the same
# transaction when foreign-key checks are still pending.

from django.db import migrations
from django.db.models import Count


def merge_duplicate_lines(apps, schema_editor):
    db = schema_editor.connection.alias
    OrderLine = apps.get_model("orders", "OrderLine")
    duplicates = (
        OrderLine.objects.using(db)
        .values("order_id", "product_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for group in duplicates:
        lines = list(
            OrderLine.objects.using(db)
            .filter(order_id=group["order_id"], product_id=group["product_id"])
            .order_by("id")
        )
        keep, extra = lines[0], lines[1:]
        keep.quantity += sum(line.quantity for line in extra)
        keep.save(update_fields=["quantity"])
        OrderLine.objects.using(db).filter(pk__in=[line.pk for line in extra]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_order_placed_at"),
    ]

    operations = [
        migrations.RunPython(merge_duplicate_lines, migrations.RunPython.noop),
    ]
