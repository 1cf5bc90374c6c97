"""A Kubernetes API emulator for tests: real HTTP on 127.0.0.1, pods run as local processes.

Use :class:`~tests.k8s_emulator.emulator.K8sEmulator` directly or the fixtures of
:mod:`tests.k8s_emulator.plugin`.
"""

from __future__ import annotations

from tests.k8s_emulator.emulator import K8sEmulator

__all__ = ["K8sEmulator"]
