# Step 2 of 3: every existing product gets the slug new products get on save.

from django.db import migrations
from django.utils.text import slugify


def backfill_slugs(apps, schema_editor):
    db = schema_editor.connection.alias
    Product = apps.get_model("catalog", "Product")
    for product in Product.objects.using(db).filter(slug__isnull=True).iterator():
        product.slug = slugify(f"{product.name} {product.sku}")[:220]
        product.save(update_fields=["slug"])


class Migration(migrations.Migration):
    dependencies = [
        ("catalog", "0005_product_slug"),
    ]

    operations = [
        migrations.RunPython(backfill_slugs, migrations.RunPython.noop),
    ]
