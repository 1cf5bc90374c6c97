"""Runtimes for init-code ETLs: which image and pod template each runtime name maps to."""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

__all__ = [
    "AIS_CLASS_RUNTIME_COMMAND",
    "AIS_CLASS_RUNTIME_REPO",
    "RUNTIMES",
    "RUNTIME_IMAGE_REPO",
    "RUNTIME_SERVER_COMMAND",
    "RUNTIME_UID",
    "Runtime",
    "default_runtime",
    "is_ais_class_runtime_image",
    "is_runtime_image",
    "local_image_command",
]

RUNTIME_IMAGE_REPO = "airflow-ais-etl/runtime-python"
"""Repository of the project's runtime images; the tag is ``<python X.Y>v2``."""

RUNTIME_SERVER_COMMAND = ["python", "-m", "airflow_ais_etl.runtime"]
"""Command that starts the transformer server inside the runtime image."""

AIS_CLASS_RUNTIME_REPO = "aistorage/runtime_python"
"""AIS's image for ``init_class`` ETLs (tag: the Python ``X.Y``); it unpickles ``ETL_CLASS_PAYLOAD``."""

AIS_CLASS_RUNTIME_COMMAND = ["python", "-m", "airflow_ais_etl.aisruntime"]
"""Our local equivalent of AIS's ``runtime_python`` entrypoint (needs the ``ais`` extra)."""

RUNTIME_UID = 10001
"""The runtime image's non-root user (``USER`` in docker/runtime-python.Dockerfile; podspecs/runtime.yaml)."""


@dataclass(frozen=True)
class Runtime:
    """A supported init-code runtime.

    :param name: the name users pass (``python3.11v2``)
    :param python_version: the interpreter's ``X.Y`` version
    :param image: container image with that interpreter and the runtime server
    :param template: pod template file name under ``podspecs/``
    """

    name: str
    python_version: str
    image: str
    template: str = "runtime.yaml"


def _runtime(version: str) -> Runtime:
    return Runtime(
        name=f"python{version}v2",
        python_version=version,
        image=f"{RUNTIME_IMAGE_REPO}:{version}v2",
        template="runtime.yaml",
    )


RUNTIMES: dict[str, Runtime] = {rt.name: rt for rt in map(_runtime, ("3.10", "3.11", "3.12", "3.13"))}


def _split_image(image: str) -> tuple[str, str]:
    """Return ``(repository, tag)`` of an image reference (digest dropped; tag ``""`` when none)."""
    ref = image.strip().split("@", 1)[0]
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    return (ref[:colon], ref[colon + 1 :]) if colon > slash else (ref, "")


def _repo_is(image: str, repo: str) -> bool:
    ref = _split_image(image)[0]
    return ref == repo or ref.endswith("/" + repo)


def is_runtime_image(image: str) -> bool:
    """Tell whether ``image`` is one of ours, whatever its registry host, tag or digest.

    :param image: an image reference such as ``registry:5000/airflow-ais-etl/runtime-python:3.11v2``
    :return: True when its repository path ends with :data:`RUNTIME_IMAGE_REPO`
    """
    return _repo_is(image, RUNTIME_IMAGE_REPO)


def is_ais_class_runtime_image(image: str) -> bool:
    """Tell whether ``image`` is AIS's ``runtime_python`` (what the SDK's ``init_class`` asks for)."""
    return _repo_is(image, AIS_CLASS_RUNTIME_REPO)


def local_image_command(image: str) -> list[str] | None:
    """Return the local program of an image that has no ``command``, or None when it has none.

    This is the one map from images to local programs (the local backend and the Kubernetes
    emulator's kubelet use it): our runtime images run our transformer server; AIS's
    ``runtime_python`` runs :mod:`airflow_ais_etl.aisruntime`, told the image's Python version (its
    tag) so a payload pickled by another Python fails with that hint.
    """
    if is_runtime_image(image):
        return list(RUNTIME_SERVER_COMMAND)
    if is_ais_class_runtime_image(image):
        tag = _split_image(image)[1]
        version = tag if re.fullmatch(r"\d+\.\d+", tag) else ""
        return [*AIS_CLASS_RUNTIME_COMMAND, *(["--image-python", version] if version else [])]
    return None


def default_runtime() -> str:
    """Return the runtime of this interpreter's version, so pickled or version-specific code works.

    :return: e.g. ``python3.12v2``; ``python3.11v2`` on an interpreter no runtime matches
    """
    name = f"python{sys.version_info.major}.{sys.version_info.minor}v2"
    return name if name in RUNTIMES else "python3.11v2"
