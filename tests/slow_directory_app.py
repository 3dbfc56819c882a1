"""`flask --app tests.slow_directory_app …`: the real application whose directory imports pause
after each committed batch (DIRECTORY_TEST_PAUSE seconds, default 0.3), so that a test can watch,
refuse a second run beside, or kill -9 a real worker or command-line process mid-import at a
known point. Nothing else differs from `app`."""

from __future__ import annotations

import os
import time

from app import create_app as create_real_app
from services.directory import pipeline


def create_app():
    pause = float(os.environ.get("DIRECTORY_TEST_PAUSE", "0.3"))
    after_batch = pipeline.Import._after_batch

    def slowly(self, stop: bool) -> None:
        time.sleep(pause)
        after_batch(self, stop)

    pipeline.Import._after_batch = slowly  # type: ignore[method-assign]
    return create_real_app()
