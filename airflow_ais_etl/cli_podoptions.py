"""The ``ais-etl init code|spec`` flags of an ETL's pod options, gathered into one ``pod_options`` object.

``--pod-options`` takes the whole object (JSON, or ``@file`` with JSON or YAML); the other flags
set one option each and win over the same key of ``--pod-options``. Checking is the model's
(:func:`airflow_ais_etl.etl.podoptions.parse_pod_options`), as for operators and the Python API.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.podoptions import PULL_POLICIES

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["add_pod_option_flags", "pod_options_from_flags"]


def add_pod_option_flags(parser: argparse.ArgumentParser, *, suppress: bool = False) -> None:
    """Add the pod option flags to an ``init`` (sub-)command; ``suppress``: leave unset when not given.

    A sub-command suppresses its defaults so that they do not hide what was given before its name.
    """
    group = parser.add_argument_group("pod options (over the connection's, key by key)")
    default = argparse.SUPPRESS if suppress else None
    for flags, kwargs in (
        (("--pod-options",), {"metavar": "JSON|@FILE", "help": "all pod options as one object"}),
        (("--resources",), {"metavar": "JSON", "help": 'e.g. {"requests": {"cpu": "500m"}}'}),
        (("--image-pull-policy",), {"choices": PULL_POLICIES}),
        (("--image-pull-secret",), {"action": "append", "metavar": "NAME", "help": "repeatable"}),
        (("--toleration",), {"action": "append", "metavar": "JSON", "help": "one object; repeatable"}),
        (("--label",), {"action": "append", "metavar": "KEY=VALUE", "help": "extra pod label; repeatable"}),
        (("--annotation",), {"action": "append", "metavar": "KEY=VALUE", "help": "repeatable"}),
        (("--service-account",), {"metavar": "NAME"}),
        (("--priority-class",), {"metavar": "NAME"}),
    ):
        group.add_argument(*flags, default=default, **kwargs)


def _json(flag: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{flag} is not valid JSON: {exc}") from None


def _pairs(flag: str, pairs: Sequence[str] | None) -> dict[str, str] | None:
    if not pairs:
        return None
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValidationError(f"invalid {flag} {pair!r}: use KEY=VALUE")
        out[key] = value
    return out


def _whole(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    if text.startswith("@"):
        try:
            loaded = yaml.safe_load(Path(text[1:]).read_text())
        except OSError as exc:
            raise ValidationError(f"cannot read --pod-options file {text[1:]}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            raise ValidationError(f"--pod-options file {text[1:]} is not JSON or YAML: {exc}") from None
    else:
        loaded = _json("--pod-options", text)
    if not isinstance(loaded, dict):
        raise ValidationError(f"--pod-options must be an object of pod options, got {type(loaded).__name__}")
    return loaded


def pod_options_from_flags(args: argparse.Namespace) -> dict[str, Any] | None:
    """Return the ``pod_options`` the flags give (None when no flag is given), not yet checked."""
    options = _whole(args.pod_options)
    single = {
        "resources": _json("--resources", args.resources) if args.resources else None,
        "image_pull_policy": args.image_pull_policy,
        "image_pull_secrets": args.image_pull_secret,
        "tolerations": [_json("--toleration", t) for t in args.toleration] if args.toleration else None,
        "pod_labels": _pairs("--label", args.label),
        "pod_annotations": _pairs("--annotation", args.annotation),
        "service_account_name": args.service_account,
        "priority_class_name": args.priority_class,
    }
    options.update({k: v for k, v in single.items() if v is not None})
    return options or None
