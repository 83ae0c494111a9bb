"""Model artifacts in the shm directory: ``model-<sha256>.skops``, written and read one way.

The daemon installs verified artifact bytes under their digest's name (atomic, mode 0640)
and names the file in a generation's metadata; workers read it back with
:func:`read_model_file`, which refuses anything but a regular file of bounded size, so a
FIFO, device or symlink planted under that name neither hangs nor fools a worker.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
from pathlib import Path

from contract._atomic import write_atomic

__all__ = [
    "MAX_MODEL_BYTES",
    "install_model_file",
    "is_model_file",
    "model_file_name",
    "model_file_sha256",
    "prune_model_files",
    "read_model_file",
    "read_regular_file",
]

# Far above any artifact of this project (tens of KiB) and far below a worker's memory.
MAX_MODEL_BYTES = 512 * 1024 * 1024
_NAME = re.compile(r"\Amodel-([0-9a-f]{64})\.skops\Z")


def model_file_name(sha256: str) -> str:
    """``model-<sha256>.skops``: the name pins the content."""
    return f"model-{sha256}.skops"


def model_file_sha256(name: str) -> str | None:
    """The digest a model file name promises, or None when ``name`` is not one."""
    match = _NAME.match(name)
    return match.group(1) if match else None


def is_model_file(name: str) -> bool:
    """True for ``model-<64 hex>.skops``."""
    return _NAME.match(name) is not None


def install_model_file(directory: Path, data: bytes) -> tuple[str, str]:
    """Place artifact bytes in ``directory`` under their digest's name; return (name, digest).

    A file already there with the right content is kept; one with other content (a torn
    or planted file) is replaced atomically.
    """
    digest = hashlib.sha256(data).hexdigest()
    name = model_file_name(digest)
    target = directory / name
    with contextlib.suppress(OSError):
        if hashlib.sha256(read_model_file(directory, name)).hexdigest() == digest:
            return name, digest
    write_atomic(target, data)
    return name, digest


def read_model_file(directory: Path, name: str, *, max_bytes: int = MAX_MODEL_BYTES) -> bytes:
    """The bytes of ``directory/name``; ``OSError`` when it is not a regular file (symlinks
    are not followed) of at most ``max_bytes``."""
    return read_regular_file(directory / name, max_bytes=max_bytes)


def read_regular_file(
    path: Path, *, max_bytes: int = MAX_MODEL_BYTES, follow_symlinks: bool = False
) -> bytes:
    """The bytes of ``path``; ``OSError`` when it is not a regular file of at most
    ``max_bytes``. A symlink is refused unless ``follow_symlinks`` (an artifact the operator
    names, such as a mounted secret, may be one; a file in the shm directory may not)."""
    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK
    if not follow_symlinks:
        flags |= os.O_NOFOLLOW
    # O_NONBLOCK: a FIFO planted under this name must not block the caller.
    fd = os.open(path, flags)
    with os.fdopen(fd, "rb") as handle:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, f"{path} is not a regular file")
        if st.st_size > max_bytes:
            raise OSError(errno.EFBIG, f"{path} is larger than {max_bytes} bytes")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise OSError(errno.EFBIG, f"{path} is larger than {max_bytes} bytes")
    return data


def prune_model_files(directory: Path, keep: set[str]) -> None:
    """Unlink model files not named in ``keep`` (workers that loaded them hold the model in
    memory and are unaffected)."""
    with contextlib.suppress(FileNotFoundError):
        for path in directory.iterdir():
            if is_model_file(path.name) and path.name not in keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
