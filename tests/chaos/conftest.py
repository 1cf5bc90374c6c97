"""The local backend's fixtures (a private home, the API over it), reused by the chaos tests."""

from __future__ import annotations

from tests.local.conftest import api, home  # noqa: F401  (fixtures reused here)
