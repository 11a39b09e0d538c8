"""Accounts: a profile per user, the seeded roles (groups) and demo users, the auth endpoints."""
