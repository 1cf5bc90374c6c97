"""ETL metadata (MD): the cluster-wide set of defined ETLs, versioned, with the reference's JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from airflow_ais_etl.etl.errors import ValidationError, go_quote
from airflow_ais_etl.etl.msg import InitMsg, decode_msg, to_wire
from airflow_ais_etl.etl.podoptions import parse_pod_options

__all__ = ["EtlMD"]

_KINDS = ("code", "spec")


@dataclass
class EtlMD:
    """Defined ETLs by name; every change bumps ``version`` (deletes too, unlike the reference).

    :param version: increases with every add or delete; receivers ignore older versions
    :param etls: messages by ETL name
    :param env: the extra pod env each ETL was initialised with (so that ``start`` restores it)
    :param pod_options: the pod options each ETL was initialised with (likewise)
    """

    version: int = 0
    etls: dict[str, InitMsg] = field(default_factory=dict)
    env: dict[str, dict[str, str]] = field(default_factory=dict)
    pod_options: dict[str, dict[str, Any]] = field(default_factory=dict)

    def add(
        self, msg: InitMsg, env: Mapping[str, str] | None = None, pod_options: Mapping[str, Any] | None = None
    ) -> None:
        """Insert or replace a message (with its extra pod env and options) by its name; bump the version."""
        self.etls[msg.name] = msg
        self.env.pop(msg.name, None)
        self.pod_options.pop(msg.name, None)
        if env:
            self.env[msg.name] = dict(env)
        if pod_options:
            self.pod_options[msg.name] = parse_pod_options(pod_options)
        self.version += 1

    def pod_options_of(self, name: str) -> dict[str, Any]:
        """Return the pod options ``name`` was initialised with (empty when none)."""
        return parse_pod_options(self.pod_options.get(name))

    def env_of(self, name: str) -> dict[str, str]:
        """Return the extra pod env ``name`` was initialised with (empty when none)."""
        return dict(self.env.get(name, {}))

    def get(self, name: str) -> InitMsg | None:
        """Return the message of ``name``, or None."""
        return self.etls.get(name)

    def delete(self, name: str) -> bool:
        """Remove ``name``; bump the version only when something was removed.

        :return: whether the name was defined
        """
        if self.etls.pop(name, None) is None:
            return False
        self.env.pop(name, None)
        self.pod_options.pop(name, None)
        self.version += 1
        return True

    def names(self) -> list[str]:
        """Return the defined names, sorted."""
        return sorted(self.etls)

    def to_json(self) -> str:
        """Serialise as the reference does; ``type`` is JSON-encoded inside a string (``"\\"code\\""``)."""
        return json.dumps(
            {
                "version": self.version,
                "etls": {name: self._entry(name, msg) for name, msg in self.etls.items()},
            }
        )

    def _entry(self, name: str, msg: InitMsg) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": json.dumps(msg.kind), "msg": to_wire(msg)}
        if self.env.get(name):
            entry["env"] = self.env[name]  # our addition; the reference's readers ignore it
        if self.pod_options.get(name):
            entry["pod_options"] = self.pod_options[name]  # likewise
        return entry

    @classmethod
    def from_json(cls, text: str | bytes) -> EtlMD:
        """Parse MD JSON; accept the reference's double-encoded ``type`` and a plain one.

        :raises ValidationError: on malformed JSON, an unknown type or a bad message
        """
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValidationError(f"invalid ETL metadata: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValidationError(f"invalid ETL metadata: expected a JSON object, got {type(data).__name__}")
        version = data.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int):
            raise ValidationError(f"invalid ETL metadata: version must be an integer, got {version!r}")
        entries = data.get("etls")
        if entries is None:
            entries = {}
        if not isinstance(entries, Mapping):
            raise ValidationError("invalid ETL metadata: etls must be an object")
        etls: dict[str, InitMsg] = {}
        envs: dict[str, dict[str, str]] = {}
        options: dict[str, dict[str, Any]] = {}
        for name, entry in entries.items():
            if not isinstance(entry, Mapping) or not isinstance(entry.get("msg"), Mapping):
                raise ValidationError(
                    f"invalid ETL metadata entry {go_quote(str(name))}: expecting type and msg"
                )
            kind = _unwrap_type(entry.get("type"))
            if kind not in _KINDS:
                raise ValidationError(f"invalid InitMsg type {go_quote(kind)}")
            etls[name] = decode_msg(entry["msg"], kind)
            env = entry.get("env") or {}
            if not isinstance(env, Mapping) or not all(isinstance(v, str) for v in env.values()):
                raise ValidationError(
                    f"invalid ETL metadata entry {go_quote(str(name))}: env must map names to strings"
                )
            if env:
                envs[str(name)] = {str(k): v for k, v in env.items()}
            try:
                pod_options = parse_pod_options(entry.get("pod_options"))
            except ValidationError as exc:
                raise ValidationError(f"invalid ETL metadata entry {go_quote(str(name))}: {exc}") from None
            if pod_options:
                options[str(name)] = pod_options
        return cls(version=version, etls=etls, env=envs, pod_options=options)

    def __str__(self) -> str:
        return f"EtlMD v{self.version}({len(self.etls)})"


def _unwrap_type(raw: Any) -> str:
    """Return the message type from ``"\\"code\\""`` (reference) or ``"code"``."""
    if not isinstance(raw, str):
        return "" if raw is None else str(raw)
    if raw.startswith('"'):
        try:
            inner = json.loads(raw)
        except json.JSONDecodeError:
            return raw
        return inner if isinstance(inner, str) else raw
    return raw
