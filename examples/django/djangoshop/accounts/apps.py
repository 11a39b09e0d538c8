"""App configuration of accounts; connects the signal that gives every new user a profile."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "djangoshop.accounts"
    label = "accounts"

    def ready(self) -> None:
        from djangoshop.accounts import signals  # noqa: F401 - connects the receivers
