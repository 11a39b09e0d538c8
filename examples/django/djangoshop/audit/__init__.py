"""Audit: an event for every change made through the API, readable by administrators."""
