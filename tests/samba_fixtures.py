"""Fixtures starting a real Samba AD domain controller (testing/samba_dc.py) in its own network
namespace, restored from the machine's snapshot. A DC that cannot start fails the run in CI and
skips its tests loudly elsewhere (tests.conftest.unavailable).

`samba_dc`: one DC per test module, fresh for the module; its tests must not change the directory.
`fresh_samba_dc`: a DC restored for each test (a few seconds), free to change.
Import both in a test module: `from tests.samba_fixtures import fresh_samba_dc, samba_dc  # noqa: F401`.
"""

from __future__ import annotations

import pytest

from testing.samba_dc import SambaUnavailable, start_directory
from tests.conftest import started


@pytest.fixture(scope="module")
def samba_dc():
    directory = started(start_directory, SambaUnavailable, "Samba AD DC")
    yield directory
    directory.remove()


@pytest.fixture
def fresh_samba_dc():
    directory = started(start_directory, SambaUnavailable, "Samba AD DC")
    yield directory
    directory.remove()
