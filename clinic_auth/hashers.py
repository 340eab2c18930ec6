"""Django's Argon2 password hasher, parameters unchanged, run on background-priority threads.

One Argon2 check costs about 0.25 s of CPU (Django's defaults: 100 MiB, 2 passes,
8 lanes on threads of its own). When the whole clinic signs in at 8 a.m. those checks
take every core, and page views, a few milliseconds each, queued behind them
(page p99 388 ms to 1.5 s in `make bench`, part 4). Here each check runs on a small
per-process pool of threads that the kernel schedules only when nothing else wants
the CPU (Linux SCHED_IDLE; Argon2's lane threads inherit it), so a waiting page view
always goes first and the sign-ins share what is left. A raised nice value alone was
not enough: eight lane threads per check at nice 10 together still outweighed a page
view's one thread. The request thread just waits, with the GIL released, so a threaded
gunicorn worker keeps serving meanwhile. The pool also caps how many checks one worker
runs at once (one by default: more at once only makes each take longer on two cores),
and with it their memory.

No library does this; it is a thin wrapper around Django's own hasher. Settings:
PASSWORD_HASH_THREADS (checks at once per process, default 1; 0: one per core),
PASSWORD_HASH_SCHED_IDLE (default on; off falls back to the nice value) and
PASSWORD_HASH_NICE (added to the worker's nice value, at most 19; 0 turns it off; default 10).
Measured in bench/mixed_load.py (README, Benchmark, part 4).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher

_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _lower_priority() -> None:
    if not sys.platform.startswith("linux"):
        return
    thread = threading.get_native_id()
    nice = settings.PASSWORD_HASH_NICE
    # Each on its own: a sandbox that forbids one still gets the other, and the check runs regardless.
    if settings.PASSWORD_HASH_SCHED_IDLE:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(thread, os.SCHED_IDLE, os.sched_param(0))
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, thread, min(19, os.getpriority(os.PRIO_PROCESS, thread) + nice))


def _hashing_pool() -> ThreadPoolExecutor:
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:  # gunicorn forks workers: each gets its own threads
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ThreadPoolExecutor(
                    max_workers=settings.PASSWORD_HASH_THREADS or os.cpu_count() or 1,
                    thread_name_prefix="password-hash",
                    initializer=_lower_priority,
                )
                _pool_pid = pid
    return _pool


def run_low_priority(function, *args):
    return _hashing_pool().submit(function, *args).result()


class LowPriorityArgon2PasswordHasher(Argon2PasswordHasher):
    """The same "argon2" hashes as Django's hasher (either verifies the other's)."""

    def encode(self, password, salt):
        return run_low_priority(super().encode, password, salt)

    def verify(self, password, encoded):
        return run_low_priority(super().verify, password, encoded)
