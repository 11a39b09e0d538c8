"""The third step of the data path: giving one flow its own database and app."""

from nocrud.environment.image import DatabaseAddress, Environment, ProvisionError, safe_name

__all__ = ["DatabaseAddress", "Environment", "ProvisionError", "safe_name"]
