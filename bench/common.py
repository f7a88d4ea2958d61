"""What every benchmark script does with its figures: print them, and keep them if asked, with
the commit and the command that measured them."""

from __future__ import annotations

import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SPEED_RECORD = "speed-record "  # bench/speed.py prints each row as this prefix + JSON


def emit(lines: list[str], out: Path | None) -> None:
    """Print the report; with `--out`, also write it there for bench/RESULTS.md."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")


def host_cpu() -> str:
    """The CPU's model name, for a report's device line."""
    with open("/proc/cpuinfo") as info:
        return next((line.split(":", 1)[1].strip() for line in info
                     if line.startswith("model name")), platform.processor() or "unknown CPU")


def git_commit() -> str:
    """The commit a figure was measured at, and whether the tree had uncommitted changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               text=True, capture_output=True, check=True).stdout.strip()
        return head + (" + uncommitted changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line() -> str:
    """The command as it was run, the interpreter relative to the repository, to paste again."""
    exe = Path(sys.executable)
    try:
        exe = exe.relative_to(REPO)
    except ValueError:
        exe = Path(exe.name)
    return shlex.join([str(exe), *sys.argv])
