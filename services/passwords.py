"""Password hashing: argon2id at a cost set by the configuration, a bounded number at once.

Each argon2 hash holds its whole memory cost while it runs: with argon2-cffi's default profile
(64 MiB, 3 passes, 4 lanes) sixteen sign-ins at once took one process to 1.1 GB. The profile
comes from the configuration (ARGON2_MEMORY_KIB, ARGON2_TIME_COST, ARGON2_PARALLELISM; the
default is OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane), and ARGON2_CONCURRENT_HASHES
bounds how many hashes and verifications one process runs at once: the others wait their turn
(some tens of milliseconds each) instead of taking memory. The bound is per profile and process:
every application object of a process with the same profile shares one.

The hashes run on that many threads of their own, not on the request's thread: glibc keeps the
memory a thread's hash freed in that thread's arena for its next allocation, so hashing on every
request thread of a threaded worker left about one hash's memory behind per thread however few
ran at once (bench/sign_in_memory.py: 290 MiB after 16 sign-ins with a bound of 2 on the
requests' threads; 2 hashing threads keep it near 2 hashes' worth).

A stored hash carries its own parameters, so hashes of an earlier profile still verify;
`needs_rehash` tells a successful sign-in to store a new one with the current profile
(services.operators.authenticate, services.portal.check_portal_password).

Which profile applies is the application's business (its configuration): the door layer
registers a resolver once (extensions.PasswordHashingExtension); without one, or outside an
application, the default profile applies. Nothing here reads the configuration itself.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

# Hashed when the e-mail is unknown, so a wrong e-mail costs as long as a wrong password.
_DUMMY_PASSWORD = "not-a-real-password"
T = TypeVar("T")


@dataclass(frozen=True)
class HashProfile:
    """argon2id's cost per hash (memory in KiB, passes, lanes) and hashes at once per process."""

    memory_kib: int = 19 * 1024
    time_cost: int = 2
    parallelism: int = 1
    concurrent: int = 2

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> HashProfile:
        default = cls()
        return cls(
            memory_kib=int(config.get("ARGON2_MEMORY_KIB", default.memory_kib)),
            time_cost=int(config.get("ARGON2_TIME_COST", default.time_cost)),
            parallelism=int(config.get("ARGON2_PARALLELISM", default.parallelism)),
            concurrent=max(1, int(config.get("ARGON2_CONCURRENT_HASHES", default.concurrent))),
        )


class PasswordHashing:
    """Hash and verify with one profile on `profile.concurrent` threads of its own: never more
    at once; a caller waits for its turn."""

    def __init__(self, profile: HashProfile):
        self.profile = profile
        self._hasher = PasswordHasher(time_cost=profile.time_cost, memory_cost=profile.memory_kib,
                                      parallelism=profile.parallelism, type=Type.ID)
        self._pool = self._new_pool()
        self._dummy: str | None = None
        _every_hashing.add(self)

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self.profile.concurrent, thread_name_prefix="argon2")

    def _in_turn(self, work: Callable[..., T], *args: Any) -> T:
        return self._pool.submit(work, *args).result()

    def hash(self, password: str) -> str:
        return self._in_turn(self._hasher.hash, password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        """True when `password` matches; False for a wrong one and for anything that is not a
        hash (an empty column, another scheme)."""
        if not password_hash:
            return False
        try:
            return self._in_turn(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether a hash was made with another profile (a successful sign-in then stores a new
        one). Reads the hash's parameters only: no hashing, no slot."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def spend_like_a_verify(self, password: str) -> None:
        """Cost what a verification costs, for an account that does not exist."""
        if self._dummy is None:
            self._dummy = self.hash(_DUMMY_PASSWORD)
        self.verify(self._dummy, password)


_hashings: dict[HashProfile, PasswordHashing] = {}
_hashings_guard = threading.Lock()
_resolver: Callable[[], PasswordHashing | None] | None = None
_every_hashing: weakref.WeakSet[PasswordHashing] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    """A forked process (a gunicorn worker of a preloaded app) has none of its parent's
    threads: each PasswordHashing gets new ones."""
    for hashing in list(_every_hashing):
        hashing._pool = hashing._new_pool()


os.register_at_fork(after_in_child=_after_fork_in_child)


def hashing_for(profile: HashProfile) -> PasswordHashing:
    """The process's one PasswordHashing of `profile` (so its bound holds for the process)."""
    with _hashings_guard:
        hashing = _hashings.get(profile)
        if hashing is None:
            hashing = _hashings[profile] = PasswordHashing(profile)
        return hashing


def resolve_with(resolver: Callable[[], PasswordHashing | None]) -> None:
    """Let the door layer say which PasswordHashing applies now (its application's); the
    resolver answers None outside an application."""
    global _resolver
    _resolver = resolver


def current() -> PasswordHashing:
    """The PasswordHashing of the running application, else that of the default profile."""
    hashing = _resolver() if _resolver is not None else None
    return hashing if hashing is not None else hashing_for(HashProfile())
