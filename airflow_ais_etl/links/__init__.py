"""Links of the AIS ETL provider."""

from __future__ import annotations
