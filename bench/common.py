"""What every benchmark script does with its figures: print them, and keep them if asked."""

from __future__ import annotations

from pathlib import Path


def emit(lines: list[str], out: Path | None) -> None:
    """Print the report; with `--out`, also write it there for bench/RESULTS.md."""
    text = "\n".join(lines)
    print(text)
    if out:
        out.write_text(text + "\n")
