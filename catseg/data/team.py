"""Who and where, for a team sharing one dataset: this machine's name and the command-line user.

A training run belongs to the machine whose process trains it (`this_host`); photos, mask
revisions and runs record who made them (the signed-in user in the app, the operating-system
user on the command line, see `command_line_user`).
"""

from __future__ import annotations

import getpass
import os
import socket

HOST_VARIABLE = "CATSEG_HOST"


def this_host() -> str:
    """This machine's name: `CATSEG_HOST` if set (tests simulate several machines with it), else the host name."""
    return os.environ.get(HOST_VARIABLE, "").strip() or socket.gethostname()


def command_line_user() -> str | None:
    """The operating-system user running this process, as the CLI records it; None if the system has no name for it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
