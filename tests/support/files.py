"""The file system as a value, to show that a refused operation touched nothing."""

from __future__ import annotations

import os
from pathlib import Path


def tree(root: Path) -> dict[str, tuple[str, int, int]]:
    """Everything under ``root`` (links not followed): relative path -> (kind, size, mtime)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
            size = 0 if kind == "dir" else st.st_size
            out[str(path.relative_to(root))] = (kind, size, st.st_mtime_ns)
    return out


def sentinel(folder: Path) -> Path:
    """A folder outside the store with one file in it, for an attack to try to delete."""
    folder.mkdir(parents=True)
    (folder / "keep.txt").write_text("must survive\n")
    return folder


def intact(folder: Path) -> bool:
    return (folder / "keep.txt").read_text() == "must survive\n"
