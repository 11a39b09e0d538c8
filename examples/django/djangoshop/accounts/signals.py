"""Every user gets a profile when it is created, however it is created."""

from typing import Any

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from djangoshop.accounts.models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender: Any, instance: Any, created: bool, **kwargs: Any) -> None:
    """Create the profile of a new user, named after the user."""
    if created and not kwargs.get("raw"):
        name = f"{instance.first_name} {instance.last_name}".strip() or instance.username
        Profile.objects.get_or_create(user=instance, defaults={"display_name": name})
