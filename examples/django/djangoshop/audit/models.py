"""Audit events."""

import json
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone


class AuditEvent(models.Model):
    """Who did what to which object, and the fields they sent."""

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_username = models.CharField(max_length=150, blank=True, default="")
    action = models.CharField(max_length=20)
    entity = models.CharField(max_length=50)
    entity_id = models.CharField(max_length=64)
    changes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["entity", "entity_id"], name="audit_event_entity")]

    def __str__(self) -> str:
        return f"{self.actor_username} {self.action} {self.entity}:{self.entity_id}"


def _storable(value: Any) -> Any:
    """``value`` without what PostgreSQL's jsonb cannot hold: NUL, lone surrogates.

    Found by `nocrud fuzz`: a form field holding ``\\x00`` made every create a 500.
    """
    if isinstance(value, str):
        return value.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    return value


def record(user: Any, action: str, instance: models.Model, changes: Any = None) -> AuditEvent:
    """Record that ``user`` did ``action`` to ``instance``."""
    authenticated = user is not None and user.is_authenticated
    return AuditEvent.objects.create(
        actor=user if authenticated else None,
        actor_username=user.get_username() if authenticated else "",
        action=action,
        entity=instance._meta.label_lower,
        entity_id=str(instance.pk),
        # Request data as JSON (decimals, dates and form lists included); no passwords.
        changes={
            _storable(key): _storable(value)
            for key, value in json.loads(
                json.dumps(dict(changes or {}), cls=DjangoJSONEncoder)
            ).items()
            if "password" not in key
        },
    )
