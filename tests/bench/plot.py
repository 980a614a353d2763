"""Charts of the benchmark's scale series (bench.py --plot DIR): one PNG per series, x the
amount of work, one line per mode with its min–max as error bars. Imported only when --plot is
given, so the benchmark itself needs no matplotlib (Debian: python3-matplotlib)."""

import os
import re

import matplotlib

matplotlib.use("Agg")  # files only: no display on a build machine
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen
from matplotlib import ticker  # noqa: E402

COLORS = {"zmq_proxy": "tab:blue", "tidepool": "tab:orange", "direct": "tab:gray"}


def file_name(key):
    """scale/routes/idle_absent -> scale-routes-idle_absent.png"""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", key) + ".png"


def write_all(directory, series_list, subtitle):
    """Writes a chart for each series that has a figure; returns the paths written."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for series in series_list:
        path = os.path.join(directory, file_name(series.key))
        if write_one(path, series, subtitle):
            written.append(path)
    return written


def write_one(path, series, subtitle):
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    drawn = False
    for line, points in series.lines.items():
        xs = sorted(x for x, v in points.items() if v)
        if not xs:
            continue
        med = [points[x]["median"] for x in xs]
        lo = [points[x]["median"] - points[x]["min"] for x in xs]
        hi = [points[x]["max"] - points[x]["median"] for x in xs]
        ax.errorbar(xs, med, yerr=[lo, hi], marker="o", capsize=3, label=line,
                    color=COLORS.get(line))
        drawn = True
    if not drawn:
        plt.close(fig)
        return False
    if series.xlog:
        ax.set_xscale("log")
    xs = sorted({x for pts in series.lines.values() for x in pts})
    ax.set_xticks(xs, [f"{x:,}" for x in xs])  # the counts measured, not powers of ten
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())
    if series.ylog:
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    ax.yaxis.set_major_formatter(ticker.EngFormatter(sep=""))  # 2M msgs/s, not 2e6
    if not series.ylog and all(v["median"] >= 0 for pts in series.lines.values() for v in pts.values() if v):
        ax.set_ylim(bottom=0)
    ax.set_xlabel(series.xlabel)
    ax.set_ylabel(series.unit)
    ax.set_title(f"{series.title}\n{subtitle}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True
