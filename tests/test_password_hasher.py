"""Issue 16, part 2: password checks run at a lower CPU priority, with Django's Argon2 unchanged."""

import os
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.contrib.auth.hashers import Argon2PasswordHasher

from clinic_auth import hashers
from clinic_auth.hashers import LowPriorityArgon2PasswordHasher


def test_the_hashes_are_djangos_argon2_both_ways():
    ours, djangos = LowPriorityArgon2PasswordHasher(), Argon2PasswordHasher()
    encoded = ours.encode("a clinic password", ours.salt())
    assert encoded.startswith("argon2$argon2id$v=19$m=102400,t=2,p=8$")  # Django's default parameters
    assert djangos.verify("a clinic password", encoded)
    assert ours.verify("a clinic password", djangos.encode("a clinic password", djangos.salt()))
    assert not ours.verify("another password", encoded)


def test_the_same_salt_gives_djangos_exact_string():
    salt = Argon2PasswordHasher().salt()
    for password in ("a clinic password", "", "zażółć gęślą jaźń"):
        assert LowPriorityArgon2PasswordHasher().encode(password, salt) == Argon2PasswordHasher().encode(password, salt)


def test_older_argon2_hashes_still_verify_and_malformed_ones_fail_as_in_django():
    import argon2

    older = "argon2" + argon2.low_level.hash_secret(
        b"pw-older", b"an older salt", time_cost=1, memory_cost=64, parallelism=2, hash_len=16,
        type=argon2.low_level.Type.I, version=16,
    ).decode()
    assert older.startswith("argon2$argon2i$v=16$")
    assert hashers._verify("pw-older", older)
    assert not hashers._verify("pw-other", older)
    with pytest.raises(argon2.exceptions.InvalidHashError):
        Argon2PasswordHasher().verify("pw", "argon2$not-a-hash")
    with pytest.raises(argon2.exceptions.InvalidHashError):
        hashers._verify("pw", "argon2$not-a-hash")


def test_hashes_it_cannot_compute_or_spelled_otherwise_get_djangos_own_answer():
    import argon2

    good = Argon2PasswordHasher().encode("pw-edge", "a-salt-of-some-length")
    prefix, salt, digest = good.rsplit("$", 2)
    short_salt = "argon2" + argon2.low_level.hash_secret(
        b"pw-edge", b"12345678", time_cost=1, memory_cost=64, parallelism=2, hash_len=16, type=argon2.low_level.Type.ID,
    ).decode().replace("$MTIzNDU2Nzg$", "$MTIz$")  # a 3-byte salt: libargon2 refuses to compute it
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    # 32 bytes in 43 characters leave 2 bits unused: flipping one gives the same bytes to a lax decoder.
    odd_last = alphabet[alphabet.index(digest[-1]) ^ 1]
    odd_spelling = f"{prefix}${salt}${digest[:-1]}{odd_last}"
    for encoded in (short_salt, odd_spelling, f"{prefix}${salt}$"):
        assert hashers._verify("pw-edge", encoded) == Argon2PasswordHasher().verify("pw-edge", encoded)
    assert hashers._verify(b"pw-edge", good)  # bytes, as Django's hasher takes them


def most_threads_during(check) -> int:
    """How many threads this process had at most while check() ran on a thread of its own."""
    done = threading.Event()
    worker = threading.Thread(target=lambda: (check(), done.set()))
    most = 0
    worker.start()
    while not done.is_set():
        most = max(most, len(os.listdir("/proc/self/task")))
    worker.join()
    return most


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the process's threads from /proc")
def test_a_check_computes_its_lanes_on_one_thread():
    encoded = Argon2PasswordHasher().encode("pw-lanes", Argon2PasswordHasher().salt())
    before = len(os.listdir("/proc/self/task"))
    # Django's own check starts a thread per lane (8); the helper's starts none beside its own.
    assert most_threads_during(lambda: Argon2PasswordHasher().verify("pw-lanes", encoded)) >= before + 1 + 4
    assert most_threads_during(lambda: hashers._verify("pw-lanes", encoded)) == before + 1


def test_the_shipped_settings_use_it_first(settings):
    from clinic_auth import settings as shipped

    assert shipped.PASSWORD_HASHERS[0] == "clinic_auth.hashers.LowPriorityArgon2PasswordHasher"


def scheduling_here():
    """Run in the helper: which process this is, and how the kernel schedules it."""
    return os.getpid(), os.sched_getscheduler(0), os.getpriority(os.PRIO_PROCESS, 0)


def nap_here(seconds):
    started = time.monotonic()
    time.sleep(seconds)
    return started, time.monotonic()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="scheduling policies are Linux's")
def test_a_check_runs_in_a_helper_process_the_kernel_schedules_only_when_the_cpu_is_free(settings):
    own_nice = os.getpriority(os.PRIO_PROCESS, 0)
    pid, policy, nice = hashers.run_low_priority(scheduling_here)
    # Its own process, so its Python never holds a web worker's GIL while the kernel keeps it waiting.
    assert pid != os.getpid()
    assert settings.PASSWORD_HASH_SCHED_IDLE and policy == os.SCHED_IDLE
    # Also niced, for a kernel or sandbox that refuses SCHED_IDLE.
    assert nice == min(19, own_nice + settings.PASSWORD_HASH_NICE) > own_nice
    assert os.sched_getscheduler(0) == os.SCHED_OTHER  # the request's own thread is left as it was


def test_one_worker_runs_one_check_at_a_time_by_default(settings):
    assert settings.PASSWORD_HASH_PROCESSES == 1
    with ThreadPoolExecutor(4) as requests:
        spans = sorted(requests.map(lambda _: hashers.run_low_priority(nap_here, 0.05), range(4)))
    for (_, previous_end), (next_start, _) in zip(spans, spans[1:]):
        assert next_start >= previous_end


def test_a_helper_that_died_is_replaced(settings):
    pid, _, _ = hashers.run_low_priority(scheduling_here)
    os.kill(pid, signal.SIGKILL)
    hasher = LowPriorityArgon2PasswordHasher()
    encoded = Argon2PasswordHasher().encode("pw-123456789", hasher.salt())
    assert hasher.verify("pw-123456789", encoded)  # the sign-in after the helper died still works
    new_pid, _, _ = hashers.run_low_priority(scheduling_here)
    assert new_pid != pid


def test_with_priority_lowering_off_checks_run_on_the_requests_own_thread(settings):
    settings.PASSWORD_HASH_SCHED_IDLE = False
    settings.PASSWORD_HASH_NICE = 0
    pid, _, _ = hashers.run_low_priority(scheduling_here)
    assert pid == os.getpid()
    if sys.platform.startswith("linux"):  # and it is Django's check as it is, a thread per lane
        encoded = Argon2PasswordHasher().encode("pw-off", Argon2PasswordHasher().salt())
        before = len(os.listdir("/proc/self/task"))
        assert most_threads_during(lambda: LowPriorityArgon2PasswordHasher().verify("pw-off", encoded)) >= before + 1 + 4


def test_gunicorns_worker_start_starts_the_helper_only_for_this_hasher(settings, monkeypatch):
    started = []
    monkeypatch.setattr(hashers, "run_low_priority", lambda function, *args: started.append(function))
    hashers.start_helper()
    assert started == []  # the suite's first hasher is MD5: nothing to start
    settings.PASSWORD_HASHERS = ["clinic_auth.hashers.LowPriorityArgon2PasswordHasher"]
    hashers.start_helper()
    assert started == [os.getpid]


WORKER_THAT_STARTS_A_HELPER = """
import os, sys, time
import django
django.setup()
from clinic_auth import hashers
helper, _, _ = hashers.run_low_priority(sys.modules["tests.test_password_hasher"].scheduling_here)
print(helper, flush=True)
time.sleep(60)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_helper_ends_when_its_worker_is_killed():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "clinic_auth.settings"}
    worker = subprocess.Popen(
        [sys.executable, "-c", "import tests.test_password_hasher\n" + WORKER_THAT_STARTS_A_HELPER],
        cwd=Path(__file__).resolve().parent.parent, env=env, stdout=subprocess.PIPE, text=True,
    )
    helper = int(worker.stdout.readline())
    assert Path(f"/proc/{helper}").exists()
    worker.kill()  # as gunicorn kills a worker past its timeout: no chance to shut the helper down
    worker.wait()
    deadline = time.monotonic() + 10
    while Path(f"/proc/{helper}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{helper}").exists()
