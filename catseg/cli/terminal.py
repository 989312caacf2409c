"""What the command modules share about the terminal: the failure exit status and a progress bar."""

from __future__ import annotations

import sys

EXIT_FAILURE = 1


class Progress:
    """A one-line progress bar on stderr (quiet when stderr is not a terminal)."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.enabled = sys.stderr.isatty()

    def __call__(self, done: int, total: int, name: str = "") -> None:
        if not self.enabled or total == 0:
            return
        width = 30
        filled = int(width * done / total)
        print(f"\r{self.title} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr)
        if done == total:
            print(file=sys.stderr)
