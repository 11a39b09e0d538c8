"""App configuration of orders."""

from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "djangoshop.orders"
    label = "orders"
