"""Shared pytest configuration: the Kubernetes API emulator's fixtures are available everywhere."""

from __future__ import annotations

pytest_plugins = ["tests.k8s_emulator.plugin"]
