"""Importing this module registers every job of the product (each lives beside its work)."""

from __future__ import annotations
