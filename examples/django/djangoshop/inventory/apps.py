"""App configuration of inventory."""

from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "djangoshop.inventory"
    label = "inventory"
