"""Flows of the djangoshop example: CRUD, several users, business rules, validation."""
