# SKUs were typed by hand and came in any case; from now on they are upper-case only.

from django.db import migrations


def upper_case_skus(apps, schema_editor):
    db = schema_editor.connection.alias
    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.using(db).iterator():
        normalised = product.sku.strip().upper().replace(" ", "-")
        if normalised != product.sku:
            product.sku = normalised
            product.save(update_fields=["sku"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0011_model_options"),
    ]

    operations = [
        migrations.RunPython(upper_case_skus, migrations.RunPython.noop),
    ]
