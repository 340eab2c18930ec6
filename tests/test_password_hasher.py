"""Issue 16, part 2: password checks run at a lower CPU priority, with Django's Argon2 unchanged."""

import os
import sys
import threading
import time

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher

from clinic_auth.hashers import LowPriorityArgon2PasswordHasher


def test_the_hashes_are_djangos_argon2_both_ways():
    ours, djangos = LowPriorityArgon2PasswordHasher(), Argon2PasswordHasher()
    encoded = ours.encode("a clinic password", ours.salt())
    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")  # Django's default parameters
    assert djangos.verify("a clinic password", encoded)
    assert ours.verify("a clinic password", djangos.encode("a clinic password", djangos.salt()))
    assert not ours.verify("another password", encoded)


def test_the_shipped_settings_use_it_first(settings):
    from clinic_auth import settings as shipped

    assert shipped.PASSWORD_HASHERS[0] == "clinic_auth.hashers.LowPriorityArgon2PasswordHasher"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread scheduling policies are Linux's")
def test_a_check_runs_on_a_thread_the_kernel_schedules_only_when_the_cpu_is_free(settings, monkeypatch):
    seen = []
    original = Argon2PasswordHasher.verify

    def spy(self, password, encoded):
        native = threading.get_native_id()
        seen.append((threading.get_ident(), os.sched_getscheduler(native), os.getpriority(os.PRIO_PROCESS, native)))
        return original(self, password, encoded)

    monkeypatch.setattr(Argon2PasswordHasher, "verify", spy)
    hasher = LowPriorityArgon2PasswordHasher()
    encoded = Argon2PasswordHasher().encode("pw-123456789", hasher.salt())
    own_nice = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    assert os.sched_getscheduler(threading.get_native_id()) == os.SCHED_OTHER  # the request's own thread
    assert hasher.verify("pw-123456789", encoded)
    [(thread, policy, nice)] = seen
    assert thread != threading.get_ident()
    assert settings.PASSWORD_HASH_SCHED_IDLE and policy == os.SCHED_IDLE
    # Also niced, for a kernel or sandbox that refuses SCHED_IDLE.
    assert nice == min(19, own_nice + settings.PASSWORD_HASH_NICE) > own_nice


def test_one_process_runs_one_check_at_a_time_by_default(settings, monkeypatch):
    running, most = 0, 0
    lock = threading.Lock()

    def slow_verify(self, password, encoded):
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        time.sleep(0.05)
        with lock:
            running -= 1
        return True

    monkeypatch.setattr(Argon2PasswordHasher, "verify", slow_verify)
    hasher = LowPriorityArgon2PasswordHasher()
    requests = [threading.Thread(target=hasher.verify, args=("pw", "argon2$x")) for _ in range(4)]
    for thread in requests:
        thread.start()
    for thread in requests:
        thread.join()
    assert settings.PASSWORD_HASH_THREADS == 1
    assert most == 1
