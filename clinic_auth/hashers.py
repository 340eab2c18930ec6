"""Django's Argon2 password hasher, parameters unchanged, run in a background-priority helper process.

One Argon2 check costs about 0.1-0.25 s of CPU (Django's defaults: 100 MiB, 2 passes,
8 lanes). When the whole clinic signs in at 8 a.m. those checks
take every core, and page views, a few milliseconds each, queued behind them
(page p99 388 ms to 1.5 s in `make bench`, part 4). Here each web worker process hands
its checks to a helper process of its own that the kernel schedules only when nothing
else wants the CPU (Linux SCHED_IDLE), so a waiting page view always goes first and the
sign-ins share what is left. A raised nice value alone was not enough: eight lane threads
per check at nice 10 together still outweighed a page view's one thread. And the helper
computes the eight lanes on one thread (the hash is the same string): while checks ran,
eight SCHED_IDLE lane threads spread over both cores still cost a single person's page views
15-28 % of their throughput and doubled their p99; one thread cost them at most about 5 %,
and each check took a fifth to a third longer (`python -m bench.hash_interference`, README).

A process, not a thread: a background-priority thread inside the web worker held that
worker's GIL for the Python around each check, and when the kernel set it aside for
other work, every page view in the worker waited for it (priority inversion). Measured
in five paired runs of the bench's mixed load (medians, process against thread): page p50
8.7 against 9.8 ms, page p99 41.2 against 50.1 ms, code-step p99 58.2 against 65.9 ms
(README, Benchmark).

The request's thread just waits, with its GIL released, so a threaded gunicorn worker keeps
serving meanwhile. The helper also caps how many checks one worker runs at once (one by
default: more at once only makes each take longer on two cores), and with it their memory.
The helper is started with "spawn" (a new interpreter, never a fork of a threaded worker),
restarted if it dies, and ends itself within a second of its worker's end, however that came.

No library does this; it wraps Django's hasher (its parameters and its strings) and
argon2-cffi's low-level binding. Settings:
PASSWORD_HASH_PROCESSES (checks at once per web worker, default 1; 0: one per core),
PASSWORD_HASH_SCHED_IDLE (default on; off falls back to the nice value) and
PASSWORD_HASH_NICE (added to the helper's nice value, at most 19; 0 turns it off; default 10).
With both of the last two off, it is Django's hasher as it is, on the request's own thread.
"""

from __future__ import annotations

import base64
import contextlib
import multiprocessing
import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

import argon2
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher, get_hasher
from django.utils.crypto import constant_time_compare
from django.utils.encoding import force_bytes

_pool: ProcessPoolExecutor | None = None
_pool_pid: int | None = None
_pool_lock = threading.Lock()


def _helper_started(worker: int, sched_idle: bool, nice: int) -> None:
    """The helper process's initializer."""
    _lower_priority(sched_idle, nice)
    threading.Thread(target=_exit_with_worker, args=(worker,), daemon=True, name="exit-with-worker").start()


def _exit_with_worker(worker: int) -> None:
    # The helper holds both ends of its task pipe, so it never reads an end of file when its worker
    # dies without shutting it down (SIGKILL, gunicorn's timeout): it would wait, orphaned, forever.
    while os.getppid() == worker:
        time.sleep(1)
    os._exit(0)


def _lower_priority(sched_idle: bool, nice: int) -> None:
    """Background priority for the calling process and any thread it starts."""
    if not sys.platform.startswith("linux"):
        return
    # Each on its own: a sandbox that forbids one still gets the other, and the check runs regardless.
    if sched_idle:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    if nice > 0:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, min(19, os.getpriority(os.PRIO_PROCESS, 0) + nice))


def lowers_priority() -> bool:
    return settings.PASSWORD_HASH_SCHED_IDLE or settings.PASSWORD_HASH_NICE > 0


def _helper() -> ProcessPoolExecutor:
    global _pool, _pool_pid
    pid = os.getpid()
    if _pool is None or _pool_pid != pid:  # gunicorn forks workers: each starts its own helper
        with _pool_lock:
            if _pool is None or _pool_pid != pid:
                _pool = ProcessPoolExecutor(
                    max_workers=settings.PASSWORD_HASH_PROCESSES or os.cpu_count() or 1,
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_helper_started,
                    initargs=(pid, settings.PASSWORD_HASH_SCHED_IDLE, settings.PASSWORD_HASH_NICE),
                )
                _pool_pid = pid
    return _pool


def _forget_helper(broken: ProcessPoolExecutor) -> None:
    global _pool
    with _pool_lock:
        if _pool is broken:
            _pool = None


def run_low_priority(function, *args):
    """function(*args) in the helper process; function must be importable by name (it is pickled)."""
    if not lowers_priority():
        return function(*args)
    pool = _helper()
    try:
        return pool.submit(function, *args).result()
    except BrokenProcessPool:  # the helper died (killed, out of memory): start a new one and try once more
        _forget_helper(pool)
        return _helper().submit(function, *args).result()


def start_helper() -> None:
    """Start the helper now (gunicorn's post_worker_init), so the first sign-in does not wait for it;
    nothing when the site's first hasher is another (gunicorn.conf.py also serves the bench's peer sites)."""
    if isinstance(get_hasher(), LowPriorityArgon2PasswordHasher) and lowers_priority():
        run_low_priority(os.getpid)


def _encode(password, salt):
    """Django's Argon2PasswordHasher.encode, the same string, its lanes computed on one thread."""
    hasher = Argon2PasswordHasher()
    params = hasher.params()
    raw = _argon2_on_one_thread(force_bytes(password), salt.encode(), params)
    return (
        f"{hasher.algorithm}$argon2{params.type.name.lower()}$v={params.version}"
        f"$m={params.memory_cost},t={params.time_cost},p={params.parallelism}$"
        f"{_b64encode(salt.encode())}${_b64encode(raw)}"
    )


def _verify(password, encoded):
    """Django's Argon2PasswordHasher.verify, its lanes computed on one thread."""
    hasher = Argon2PasswordHasher()
    algorithm, rest = encoded.split("$", 1)
    assert algorithm == hasher.algorithm
    try:
        params = argon2.extract_parameters("$" + rest)
        if params.version != argon2.low_level.ARGON2_VERSION:
            raise ValueError("older than Argon2 1.3")
        salt, expected = (_b64decode(part) for part in rest.split("$")[-2:])
        computed = _argon2_on_one_thread(force_bytes(password), salt, params)
    except (ValueError, argon2.exceptions.HashingError):
        # Malformed, not canonical, or an older Argon2: whatever Django's own check answers (or raises).
        return hasher.verify(password, encoded)
    return constant_time_compare(computed, expected)


def _argon2_on_one_thread(password: bytes, salt: bytes, params) -> bytes:
    """argon2-cffi's hash_secret_raw(password, salt, **params), with one thread instead of one per lane.

    The hash depends on the lanes (8, Django's default), not on how many threads compute them.
    argon2-cffi's functions always start a thread per lane, and those threads, even at SCHED_IDLE,
    slowed page views (module docstring). Only libargon2's argon2_ctx takes a thread count, so this
    calls it through argon2-cffi's documented low-level binding; the tests hold the result to
    Django's hasher, string for string.
    """
    ffi, lib = argon2.low_level.ffi, argon2.low_level.lib
    out = ffi.new("uint8_t[]", params.hash_len)
    password_buffer, salt_buffer = ffi.new("uint8_t[]", password), ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "out": out, "outlen": params.hash_len,
            "pwd": password_buffer, "pwdlen": len(password),
            "salt": salt_buffer, "saltlen": len(salt),
            "secret": ffi.NULL, "secretlen": 0, "ad": ffi.NULL, "adlen": 0,
            "t_cost": params.time_cost, "m_cost": params.memory_cost,
            "lanes": params.parallelism, "threads": 1, "version": params.version,
            "allocate_cbk": ffi.NULL, "free_cbk": ffi.NULL, "flags": lib.ARGON2_DEFAULT_FLAGS,
        },
    )
    result = argon2.low_level.core(context, params.type.value)
    if result != lib.ARGON2_OK:
        raise argon2.exceptions.HashingError(argon2.low_level.error_to_str(result))
    return bytes(ffi.buffer(out, params.hash_len))


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    """Only the one spelling libargon2 writes and accepts (binascii.Error, a ValueError, otherwise)."""
    data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    if _b64encode(data) != text:
        raise ValueError("not canonical base64")
    return data


class LowPriorityArgon2PasswordHasher(Argon2PasswordHasher):
    """The same "argon2" hashes as Django's hasher (either verifies the other's)."""

    def encode(self, password, salt):
        if not lowers_priority():  # both settings off: Django's hasher as it is
            return super().encode(password, salt)
        return run_low_priority(_encode, password, salt)

    def verify(self, password, encoded):
        if not lowers_priority():
            return super().verify(password, encoded)
        return run_low_priority(_verify, password, encoded)
