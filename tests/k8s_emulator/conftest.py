"""Make the emulator fixtures available to the emulator's own tests, plus an official client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from kubernetes import client, config

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def k8s_pod_security() -> str:
    """The emulator's own tests create bare pods: their namespaces enforce nothing (see test_admission.py)."""
    return "privileged"


@pytest.fixture
def api_client(kube_config_file: Path) -> Iterator[client.ApiClient]:
    """Return an official ``kubernetes`` API client configured for the emulator."""
    api = config.new_client_from_config(str(kube_config_file))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture
def core_v1(api_client: client.ApiClient) -> client.CoreV1Api:
    """Return the official CoreV1Api bound to the emulator."""
    return client.CoreV1Api(api_client)
