#!/usr/bin/python3
"""The shipped alert rules are the generator's output, and the job is really one setting.

Usage: check_alerts_generated.py SOURCE_DIR [PROMTOOL]

1. deploy/prometheus/generate-alerts.py with its defaults prints exactly the committed
   tidepool-alerts.yml (someone edited the output, or the template without regenerating).
2. Generated for another job (`--job other-sidecar`), every series selector of every rule
   carries job="other-sidecar" and none names job="tidepool".
3. tests.yml, with its job labels rewritten to the other job, passes `promtool test rules`
   against those rules: every alert still fires and stays quiet as tested. A rule that kept
   a hard-coded job would not fire there.
Stdlib only; run with /usr/bin/python3.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_deploy import load_generator  # noqa: E402 - the one loader of the generator

OTHER_JOB = "other-sidecar"
# Series names a rule may select (metric names only; label names never look like these).
SELECTED = re.compile(r"\b(tidepool_[a-zA-Z0-9_:]+|process_[a-zA-Z0-9_:]+|up)\b(\s*\{[^}]*\})?")


def selectors_without_job(rules_text, job):
    """(line, name) for each series a rule's expr selects without job="<job>"."""
    bad, in_expr, indent = [], False, 0
    for line in rules_text.splitlines():
        stripped = line.strip()
        m = re.match(r"^(\s*)expr:\s*(.*)$", line)
        if m:
            in_expr, indent = True, len(m.group(1))
            stripped = m.group(2)
        elif in_expr and stripped and len(line) - len(line.lstrip()) <= indent:
            in_expr = False
        if not in_expr:
            continue
        code = stripped.split("#", 1)[0]
        for name, braces in SELECTED.findall(code):
            if f'job="{job}"' not in (braces or ""):
                bad.append((stripped, name))
    return bad


def main():
    src = os.path.abspath(sys.argv[1])
    promtool = sys.argv[2] if len(sys.argv) > 2 else "/usr/bin/promtool"
    prom_dir = os.path.join(src, "deploy/prometheus")
    gen = load_generator(src)
    errors = []

    with open(os.path.join(prom_dir, "tidepool-alerts.yml")) as f:
        committed = f.read()
    if gen.generate() != committed:
        errors.append("tidepool-alerts.yml is not what generate-alerts.py prints: edit "
                      "tidepool-alerts.yml.in and run deploy/prometheus/generate-alerts.py > "
                      "deploy/prometheus/tidepool-alerts.yml")
    # The checker itself must catch a selector without the job.
    probe = selectors_without_job('        expr: sum(rate(tidepool_x_total{reason="a"}[1m]))',
                                  "j")
    assert probe == [('sum(rate(tidepool_x_total{reason="a"}[1m]))', "tidepool_x_total")], probe

    other = gen.generate(job=OTHER_JOB)
    for line, name in selectors_without_job(other, OTHER_JOB):
        errors.append(f"generated for job {OTHER_JOB!r}, {name} is selected without "
                      f'job="{OTHER_JOB}": {line}')
    if 'job="tidepool"' in other:
        errors.append(f'generated for job {OTHER_JOB!r}, the rules still name job="tidepool"')

    with open(os.path.join(prom_dir, "tests.yml")) as f:
        tests = f.read()
    # The job appears in series selectors, expected labels, and descriptions that print
    # $labels.job; each rewrite must apply (else this list is out of date with tests.yml).
    rewrites = [('job="tidepool"', f'job="{OTHER_JOB}"'), ("job: tidepool", f"job: {OTHER_JOB}"),
                ("could not scrape tidepool on", f"could not scrape {OTHER_JOB} on"),
                ("of job tidepool has", f"of job {OTHER_JOB} has")]
    for old, new in rewrites:
        if old not in tests:
            errors.append(f"tests.yml no longer contains {old!r}: update {sys.argv[0]}")
        tests = tests.replace(old, new)
    work = tempfile.mkdtemp(prefix="tidepool-alerts-job-")
    try:
        with open(os.path.join(work, "tidepool-alerts.yml"), "w") as f:
            f.write(other)
        with open(os.path.join(work, "tests.yml"), "w") as f:
            f.write(tests)
        r = subprocess.run([promtool, "test", "rules", "tests.yml"], cwd=work,
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            errors.append(f"promtool test rules fails for job {OTHER_JOB!r}:\n{r.stdout}{r.stderr}")
        else:
            print(f"promtool test rules passes for the rules generated for job {OTHER_JOB!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    if errors:
        print("FAIL:\n  " + "\n  ".join(errors), file=sys.stderr)
        return 1
    n = committed.count("- alert:")
    print(f"OK: tidepool-alerts.yml is generate-alerts.py's output ({n} alerts); every selector "
          f"follows --job")
    return 0


if __name__ == "__main__":
    sys.exit(main())
