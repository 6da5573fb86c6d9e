"""Process hardening applied first thing in every entry point.

No core dumps (a dump of the bot would hold plaintext answers and unwrapped keys) and a
private umask (files we create, such as the database, blobs and the pin, are owner-only).
"""

from __future__ import annotations

import os
import resource


def harden_process() -> None:
    """Disable core dumps (soft and hard limit 0) and set umask 077."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    os.umask(0o077)
