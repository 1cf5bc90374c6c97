"""``PACKAGES`` and ``OS_PACKAGES`` of an ``init_class`` ETL, without touching the shared environment.

AIS's image pip-installs ``PACKAGES`` and apk-installs ``OS_PACKAGES`` into the pod's own
container. A local pod has no container: its environment is the user's, shared by every ETL and
by Airflow itself, so installing there could break them (and one ETL's versions would leak into
another's). So:

* a requirement the environment already satisfies is used as is (no network, nothing written);
* the others are installed into a private directory of this pod only (``--target``, on the
  import path of the server and its workers), with uv when it is on the PATH, else pip;
* ``OS_PACKAGES`` must already be installed (checked with ``dpkg-query``): installing system
  packages needs root on a shared machine, so the error says to install them there first.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from typing import TYPE_CHECKING

from airflow_ais_etl.aisruntime.errors import RuntimeFault

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["install_private", "installer_argv", "missing_os_packages", "split_list", "unsatisfied"]

_DONE = ".installed"
"""Marker in the private directory: the hash of the requirements installed there (a restart reuses them)."""


def split_list(value: str, what: str = "PACKAGES") -> list[str]:
    """Split a comma-separated env list (``PACKAGES``, ``OS_PACKAGES``) into its items.

    :raises RuntimeFault: an item starts with ``-``: an installer option, not a package
    """
    items = [item.strip() for item in value.split(",") if item.strip()]
    options = [item for item in items if item.startswith("-")]
    if options:
        raise RuntimeFault(
            f"{what} lists {', '.join(options)}: entries must be package names or requirements "
            "(e.g. numpy>=1.26), not installer options"
        )
    return items


def _satisfied(requirement: str) -> bool:
    """Tell whether the environment already has a distribution meeting ``requirement`` (a PEP 508 string)."""
    try:
        from packaging.requirements import InvalidRequirement, Requirement
    except ImportError:
        return False
    try:
        req = Requirement(requirement)
    except InvalidRequirement:
        return False  # a path or URL: install it
    if req.marker is not None and not req.marker.evaluate():
        return True  # not meant for this platform: nothing to install
    if req.url:
        return False
    try:
        version = importlib.metadata.version(req.name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return req.specifier.contains(version, prereleases=True)


def unsatisfied(requirements: list[str]) -> list[str]:
    """Return the requirements the pod's environment does not meet yet."""
    return [r for r in requirements if not _satisfied(r)]


def installer_argv(target: Path) -> list[str]:
    """Return the command that installs into ``target`` for this interpreter: uv (fast), else pip.

    :raises RuntimeFault: neither is available
    """
    uv = shutil.which("uv")
    if uv:
        return [uv, "pip", "install", "--quiet", "--python", sys.executable, "--target", str(target)]
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-input", "--quiet",
                "--target", str(target)]  # fmt: skip
    raise RuntimeFault(
        "PACKAGES need installing but neither uv nor pip is available to this pod's Python "
        f"({sys.executable}): install them into that environment yourself, or install uv or pip"
    )


def install_private(requirements: list[str], target: Path) -> None:
    """Install ``requirements`` into the private directory ``target`` (kept when already done).

    :raises RuntimeFault: the installer failed (its output is in the pod's log above this error)
    """
    stamp = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    marker = target / _DONE
    if marker.is_file() and marker.read_text() == stamp:
        return
    shutil.rmtree(target, ignore_errors=True)  # other requirements before: start clean, never mix
    target.mkdir(mode=0o700, parents=True)
    os.chmod(target, 0o700)
    argv = installer_argv(target) + requirements
    print(f"aisruntime: installing {', '.join(requirements)} into {target}", flush=True)
    done = subprocess.run(argv, check=False, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RuntimeFault(
            f"installing PACKAGES {', '.join(requirements)} failed (exit {done.returncode}; see above): "
            "check the names and versions in init_class(dependencies=[...]), and that this machine "
            "reaches the package index (or install them into the pods' environment yourself)"
        )
    marker.write_text(stamp)


def missing_os_packages(names: list[str]) -> list[str]:
    """Return the system packages among ``names`` that are not installed (all of them without dpkg)."""
    dpkg = shutil.which("dpkg-query")
    if dpkg is None:
        return list(names)
    missing = []
    for name in names:
        done = subprocess.run([dpkg, "-W", "-f=${Status}", name], capture_output=True, text=True, check=False)
        if done.returncode != 0 or "install ok installed" not in done.stdout:
            missing.append(name)
    return missing
