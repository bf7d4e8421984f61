"""Telling a full disk from other write failures."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import lmdb

DISK_FULL_SLACK = 8 << 20
"""Free bytes under which a short write (EIO) is taken for a full disk."""


def is_disk_full(exc: lmdb.Error, path: Path) -> bool:
    """Whether a failed write was the disk (or quota) running out.

    LMDB reports ENOSPC only when a write fails outright; a write cut short by the end of
    the free space comes back as EIO. An EIO on a filesystem left with (almost) no free
    space is therefore a full disk too."""
    text = str(exc)
    if "No space left" in text or "Disk quota" in text or "MDB_MAP_FULL" in text:
        return True
    code = getattr(exc, "errno", None)
    if code in (errno.ENOSPC, errno.EDQUOT):
        return True
    if code == errno.EIO or "Input/output error" in text:
        return free_bytes(path) < DISK_FULL_SLACK
    return False


def free_bytes(path: Path) -> int:
    try:
        st = os.statvfs(path)
    except OSError:
        return 1 << 62
    blocks = st.f_bfree if os.geteuid() == 0 else st.f_bavail  # root may use reserved blocks
    return blocks * st.f_frsize
