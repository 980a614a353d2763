#!/usr/bin/python3
"""Generates tidepool-alerts.yml from tidepool-alerts.yml.in: the scrape job and the runbook
location are each one setting instead of a string repeated in every rule.

Usage: generate-alerts.py [--job NAME] [--runbook URL] > tidepool-alerts.yml

Prometheus rule files have no variables, and `up` (TidepoolDown, TidepoolTargetMissing)
can only be told apart from other exporters' by its job. A template with two tokens keeps
the rules readable as YAML and needs nothing but Python's standard library; the committed
output is what Prometheus loads, and tests/e2e/ops/check_alerts_generated.py fails when it
differs from what this script prints.
"""

import argparse
import os
import re
import sys

# The scrape job_name of deploy/prometheus/prometheus.yml.
JOB = "tidepool"
# Where the runbook_url anchors point: README.md's "Runbook" section.
RUNBOOK = "https://github.com/tidepool/tidepool/blob/main/README.md"

TEMPLATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "tidepool-alerts.yml.in")


def generate(job=JOB, runbook=RUNBOOK):
    with open(TEMPLATE) as f:
        template = f.read()
    if '"' in job or "\\" in job:
        raise ValueError(f"job name {job!r} must not contain quotes or backslashes")
    # The template's own header (its leading comment lines) talks about tokens: replaced.
    lines = template.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    body = "".join(lines)
    header = (f"# GENERATED from tidepool-alerts.yml.in by generate-alerts.py (job={job!r}); "
              f"edit the template\n# and regenerate. Unit tests: tests.yml beside this file:\n"
              f"#   promtool check rules tidepool-alerts.yml && promtool test rules tests.yml\n")
    out = header + body.replace("@SELECTOR@", f'job="{job}"').replace("@RUNBOOK@", runbook)
    left = re.findall(r"@[A-Z_]+@", out)
    if left:
        raise ValueError(f"unknown tokens left in the template: {sorted(set(left))}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--job", default=JOB, help=f"scrape job name (default {JOB})")
    ap.add_argument("--runbook", default=RUNBOOK, help="URL of the README with the runbook")
    args = ap.parse_args()
    sys.stdout.write(generate(args.job, args.runbook))


if __name__ == "__main__":
    main()
