"""App configuration of catalog."""

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "djangoshop.catalog"
    label = "catalog"
