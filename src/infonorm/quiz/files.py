"""Files the command line writes whole: never half-written, through links, with the
permissions a file gets from `umask` (or keeps, when it is replaced)."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` through a file beside it, renamed over it when complete.

    A link at `path` is written through (the file it points to is replaced; the link stays).
    A new file gets 0666 less the umask, like any file a program creates; a replaced file
    keeps its mode. Returns the path of the file written."""
    target = Path(os.path.realpath(path))
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = None
    staging = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        # O_EXCL: a name nobody else holds; 0o666: the umask decides, as for any new file
        descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        if mode is not None:
            os.chmod(staging, mode)
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return target
