"""App configuration of audit."""

from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "djangoshop.audit"
    label = "audit"
