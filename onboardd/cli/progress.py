"""The CLI's progress bar: drawn in place on a terminal, a line per tenth otherwise (so a log
of a long run under systemd or in CI stays short)."""

from __future__ import annotations

from typing import TextIO

BAR_WIDTH = 30


class ProgressBar:
    """Called with (done, total) as work advances; ``what`` names the step for the log lines,
    e.g. "imported {done}/{total} rows"."""

    def __init__(self, out: TextIO, what: str) -> None:
        self.out = out
        self.what = what
        self.tty = out.isatty()
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        if self.tty:
            filled = int(fraction * BAR_WIDTH)
            self.out.write(f"\r[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] "
                           f"{fraction:4.0%} {done}/{total}")
            if done >= total:
                self.out.write("\n")
            self.out.flush()
            return
        tenth = int(fraction * 10)
        if tenth != self.last_tenth:
            self.last_tenth = tenth
            print(self.what.format(done=done, total=total) + f" ({fraction:.0%})",
                  file=self.out, flush=True)
