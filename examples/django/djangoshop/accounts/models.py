"""The profile each user has beside Django's own user model."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class Profile(models.Model):
    """What the shop knows about a user beyond Django's ``User``."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile"
    )
    display_name = models.CharField(max_length=150, blank=True)
    phone_number = models.CharField(max_length=32, blank=True)
    marketing_opt_in = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.display_name or str(self.user)
