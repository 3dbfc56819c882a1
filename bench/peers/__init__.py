"""Peers the lists are measured beside: Django admin over the same tables (django_admin.py)."""
