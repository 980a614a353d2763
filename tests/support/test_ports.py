"""Free TCP ports for the Python tests, picked as the C++ harness picks them (free_port() in
tests/support/harness.cc): from 20000-32767, below the kernel's ephemeral range (32768 up on
Debian), where no bind to port 0 and no outgoing connection can take them, each reserved for
this process's life by a lock on $TMPDIR/tidepool-test-ports/PORT (/tmp without it, as in C++). A
port a test leaves unbound for a while (a worker or tidepool restarted on it) then cannot go to
a test running beside it, as it could with ports the kernel hands out. The reservation ends
with the process; a shell script asks `opsctl.py hold-ports`, which holds them for it until it
exits."""
import fcntl
import os
import random
import socket
import time

_LOW, _HIGH = 20000, 32768
_random = random.Random(os.getpid() ^ time.time_ns())
_held = []  # the lock files stay open: each reservation lasts as long as this process


def can_bind(port):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _temp_directory():
    """As std::filesystem::temp_directory_path() in libstdc++, so both harnesses share the locks
    (tempfile.gettempdir() reads other variables, in another order)."""
    for name in ("TMPDIR", "TMP", "TEMP", "TEMPDIR"):
        if os.environ.get(name):
            return os.environ[name]
    return "/tmp"


def free_port():
    locks = os.path.join(_temp_directory(), "tidepool-test-ports")
    os.makedirs(locks, exist_ok=True)
    for _ in range(1000):
        port = _random.randrange(_LOW, _HIGH)
        try:
            fd = os.open(os.path.join(locks, str(port)), os.O_CREAT | os.O_RDWR | os.O_CLOEXEC,
                         0o666)
        except OSError:  # as the C++ harness: skip a lock file this process cannot open
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held by another test process?
        except OSError:
            os.close(fd)
            continue
        if not can_bind(port):  # in use by something that does not take part in the locks
            os.close(fd)
            continue
        _held.append(fd)
        return port
    raise RuntimeError(f"cannot find a free port in {_LOW}-{_HIGH - 1}")
