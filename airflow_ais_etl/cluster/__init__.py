"""Cluster backends: where transformation pods run (local processes or Kubernetes)."""

from __future__ import annotations
