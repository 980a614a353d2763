#!/usr/bin/python3
"""The shipped systemd unit passes `systemd-analyze verify` with no complaint at all, and says
what tidepool supports: Type=notify, a watchdog, a StateDirectory for the spool.

Usage: check_systemd_unit.py TIDEPOOL_BINARY SOURCE_DIR

systemd-analyze verify exits 0 even for an unknown key (it only prints a warning), so any
output is a failure. The unit names /usr/local/bin/tidepool, which does not exist here; the
copy that is verified names the binary just built instead. A copy with a misspelt key must be
reported, so the check is known to be able to fail.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile


def verify(unit_text, work, name="tidepool.service"):
    """(exit code, output) of systemd-analyze verify on unit_text."""
    path = os.path.join(work, name)
    with open(path, "w") as f:
        f.write(unit_text)
    run = subprocess.run(["systemd-analyze", "verify", path], capture_output=True, text=True,
                         timeout=60)
    return run.returncode, (run.stdout + run.stderr).strip()


def main():
    binary, source_dir = sys.argv[1], os.path.abspath(sys.argv[2])
    if shutil.which("systemd-analyze") is None:
        sys.exit("FAIL: systemd-analyze not found (Debian package systemd)")
    unit_file = os.path.join(source_dir, "deploy/swimmy/tidepool.service")
    text = open(unit_file).read()
    errors = []
    for setting in ("Type=notify", "NotifyAccess=main", "StateDirectory=tidepool",
                    "DynamicUser=yes", "ProtectSystem=strict"):
        if not re.search(rf"^{re.escape(setting)}$", text, re.M):
            errors.append(f"{unit_file}: no {setting}")
    watchdog = re.search(r"^WatchdogSec=(\d+)$", text, re.M)
    # The loop wakes at least once a second and pings at half the interval: below 4 s a busy
    # host could miss it; above 5 minutes a stuck loop goes unnoticed too long.
    if not watchdog or not 4 <= int(watchdog.group(1)) <= 300:
        errors.append(f"{unit_file}: WatchdogSec= missing or outside 4..300 s")
    stop = re.search(r"^TimeoutStopSec=(\d+)$", text, re.M)
    if not stop or int(stop.group(1)) <= 10:
        errors.append(f"{unit_file}: TimeoutStopSec must exceed the 10 s drain timeout")
    if not re.search(r"^RestrictAddressFamilies=.*\bAF_UNIX\b", text, re.M):
        errors.append(f"{unit_file}: RestrictAddressFamilies must keep AF_UNIX (NOTIFY_SOCKET)")

    work = tempfile.mkdtemp(prefix="tidepool-unit-")
    try:
        local = text.replace("/usr/local/bin/tidepool", os.path.abspath(binary))
        code, output = verify(local, work)
        if code != 0 or output:
            errors.append(f"systemd-analyze verify (exit {code}):\n    {output}")
        code, output = verify(local.replace("WatchdogSec=", "WatchdogSecc="), work,
                              "tidepool-misspelt.service")
        if "WatchdogSecc" not in output:
            errors.append(f"a misspelt key went unreported; the check cannot fail: {output!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if errors:
        print("FAIL:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    print(f"OK: {unit_file} verifies clean; Type=notify, WatchdogSec={watchdog.group(1)}, "
          "StateDirectory=tidepool")
    return 0


if __name__ == "__main__":
    sys.exit(main())
