"""Importing this module registers every job of the product (each lives beside its work)."""

from __future__ import annotations

import jobs.bulk_import  # noqa: F401  # CSV/XLSX preview and import
import jobs.directory  # noqa: F401  # directory imports, the lease check, scheduled syncs
import jobs.mail  # noqa: F401  # copies of request communication, intake mailboxes
import ops.heartbeat  # noqa: F401  # the worker's periodic stamp read by /health/ready
