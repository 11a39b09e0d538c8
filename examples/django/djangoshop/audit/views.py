"""The audit trail, for administrators: ``?entity=catalog.product&entity_id=7`` filters."""

from django.db.models import QuerySet
from rest_framework import permissions, serializers, viewsets

from djangoshop.audit.models import AuditEvent


class AuditEventSerializer(serializers.ModelSerializer):
    class Meta:
        model = AuditEvent
        fields = ["id", "actor_username", "action", "entity", "entity_id", "changes", "created_at"]


class AuditEventViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = AuditEvent.objects.all()
    serializer_class = AuditEventSerializer
    permission_classes = [permissions.IsAdminUser]

    def get_queryset(self) -> QuerySet[AuditEvent]:
        events = super().get_queryset()
        for name in ("entity", "entity_id", "action", "actor_username"):
            if self.request.query_params.get(name):
                events = events.filter(**{name: self.request.query_params[name]})
        return events
