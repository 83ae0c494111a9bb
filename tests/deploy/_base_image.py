"""The image test's base: Debian bookworm with python3, made from Debian packages alone.

No container registry is needed: ``mmdebstrap`` writes a minimal root filesystem with
``python3`` and ``python3-venv`` (the Dockerfile's requirements on ``BASE_IMAGE``) to a
tarball cached under ``.cache/image/``, and ``podman import`` turns it into an image. Later runs
reuse the imported image, or re-import the cached tarball when the image store lost it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.deploy._podman import Podman, PodmanError

__all__ = ["BASE_TAG", "PACKAGES", "ensure_base"]

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv")
BASE_TAG = f"localhost/shm-forecast-base:{SUITE}"
ROOTFS_TIMEOUT_S = 900.0


def _rootfs(tarball: Path) -> None:
    """Write the root filesystem tarball atomically (a half-written one is never reused)."""
    partial = tarball.with_name(tarball.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)  # a directory left by an older run
    partial.unlink(missing_ok=True)
    try:
        subprocess.run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--format=tar",  # the name ends in .partial: no format to guess from
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(partial),
            ],
            stdin=subprocess.DEVNULL,  # with no terminal, mmdebstrap would read sources from it
            check=True,
            timeout=ROOTFS_TIMEOUT_S,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        partial.unlink(missing_ok=True)
        raise PodmanError(f"mmdebstrap failed: {exc}") from exc
    os.replace(partial, tarball)


def ensure_base(engine: Podman, cache_dir: Path, report: Callable[[str], object]) -> str:
    """The base image's tag, imported into the image store if it is not there yet."""
    if engine.image_exists(BASE_TAG):
        report(f"base image {BASE_TAG}: present")
        return BASE_TAG
    cache_dir.mkdir(parents=True, exist_ok=True)
    tarball = cache_dir / f"debian-{SUITE}-{'-'.join(PACKAGES)}.tar"
    if tarball.exists():
        report(f"base image: importing the cached {tarball}")
    else:
        report(f"base image: mmdebstrap {SUITE} with {', '.join(PACKAGES)} into {tarball}")
        _rootfs(tarball)
    engine.podman("import", str(tarball), BASE_TAG, timeout=300)
    return BASE_TAG
