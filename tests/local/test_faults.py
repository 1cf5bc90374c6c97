"""Faults on the local backend: dead pods, broken code and dependencies, gateway security, bad input."""

from __future__ import annotations

import os
import signal
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.etl.errors import AisEtlError, PodStartError, ValidationError
from tests.local.conftest import UPPER

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_ais_etl.service import AisEtl


def make_wheel(root: Path, name: str, source: str) -> Path:
    """Build a minimal pure-Python wheel by hand, so pip installs it without any index."""
    import zipfile

    path = root / f"{name}-1.0-py3-none-any.whl"
    files = {
        f"{name}/__init__.py": source,
        f"{name}-1.0.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{n},,\n" for n in files) + f"{name}-1.0.dist-info/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for n, text in files.items():
            zf.writestr(n, text)
        zf.writestr(f"{name}-1.0.dist-info/RECORD", record)
    return path


def wait_for(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached")


@pytest.mark.integration
def test_killed_pod_shows_in_health_and_fails_the_next_request(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_bytes(b"abc")
    api.init_code("kill-etl", UPPER)
    pods = api.backend._pods("kill-etl")  # type: ignore[attr-defined]
    for pod in pods.values():  # kill the server on every target so any choice of pod fails
        os.kill(pod.containers[0].pid(), signal.SIGKILL)
    wait_for(lambda: all(p.exited() for p in pods.values()))
    health = api.health("kill-etl")
    assert {h.status for h in health} == {"Failed"}
    assert all("exited with code -9" in h.detail for h in health)
    with pytest.raises(AisEtlError) as err:
        api.transform_object("kill-etl", str(src), "a.txt")
    assert "kill-etl" in str(err.value)
    api.stop("kill-etl")


@pytest.mark.integration
def test_import_error_fails_init_with_the_traceback(api: AisEtl) -> None:
    code = "import no_such_module_anywhere\n\ndef transform(data):\n    return data\n"
    with pytest.raises(PodStartError) as err:
        api.init_code("broken-etl", code, timeout="20s")
    text = str(err.value)
    assert "no_such_module_anywhere" in text
    assert "ModuleNotFoundError" in text
    assert err.value.exit_code not in (None, 0)
    assert err.value.etl_name == "broken-etl"
    assert err.value.target
    assert api.backend.endpoints("broken-etl") == []
    assert api.list() == []


@pytest.mark.integration
def test_missing_transform_function_fails_init_naming_it(api: AisEtl) -> None:
    with pytest.raises(PodStartError, match="convert"):
        api.init_code("nofunc-etl", UPPER, transform="convert", timeout="20s")
    assert api.list() == []


@pytest.mark.integration
def test_dependency_that_does_not_exist_fails_with_pips_message(api: AisEtl) -> None:
    with pytest.raises(PodStartError) as err:
        api.init_code("deps-etl", UPPER, dependencies=["airflow-ais-etl-no-such-package-xyz==9.9.9"])
    text = str(err.value)
    assert "airflow-ais-etl-no-such-package-xyz" in text
    assert "No matching distribution" in text or "Could not find a version" in text
    assert api.backend.endpoints("deps-etl") == []
    assert api.list() == []


@pytest.mark.integration
def test_dependencies_are_installed_once_per_distinct_set(api: AisEtl, home: Path, tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "shoutlib", "def shout(b):\n    return b.upper() + b'!'\n")
    code = "def transform(data):\n    import shoutlib\n    return shoutlib.shout(data)\n"
    deps = f"{wheel}\n"
    src = tmp_path / "src"
    src.mkdir()
    (src / "o").write_bytes(b"hey")
    api.init_code("deps-ok-etl", code, dependencies=deps, timeout="120s")
    assert api.transform_object("deps-ok-etl", str(src), "o") == b"HEY!"
    installed = list((home / "deps").glob("*/shoutlib/__init__.py"))
    assert len(installed) == 1
    marker_mtime = installed[0].stat().st_mtime_ns
    api.init_code("deps-two-etl", code, dependencies=deps, timeout="120s")
    assert installed[0].stat().st_mtime_ns == marker_mtime  # reused, not reinstalled
    api.stop_all()


@pytest.mark.integration
def test_gateway_refuses_wrong_secret_and_traversal(api: AisEtl, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "ok.txt").write_bytes(b"fine")
    (tmp_path / "secret.txt").write_bytes(b"do not leak")
    backend = api.backend
    api.init_code("gw-etl", UPPER)
    url = backend.target_url("t1", "gw-etl")  # type: ignore[attr-defined]
    grant = backend.grant("gw-etl", str(src))
    ref = grant.__enter__()  # granted to a "job" of gw-etl (this process) until __exit__
    good = f"{url}/ais%2F@%23%2F{ref.name}%2Fok.txt"
    assert urllib.request.urlopen(good).read() == b"fine"
    wrong = good.replace(url.rsplit("/", 1)[1], "WrongSecrt")
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(wrong)
    assert err.value.code == 403
    assert b"fine" not in err.value.read()
    for evil in ("%2E%2E%2Fsecret.txt", "..%2Fsecret.txt", "%2Fetc%2Fpasswd", "a%2F..%2F..%2Fsecret.txt"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{url}/ais%2F@%23%2F{ref.name}%2F{evil}")
        assert err.value.code in (400, 403, 404)
        assert b"do not leak" not in err.value.read()
    grant.__exit__(None, None, None)
    with pytest.raises(urllib.error.HTTPError) as err:  # the job ended: the bucket is no longer served
        urllib.request.urlopen(good)
    assert err.value.code == 403
    api.stop("gw-etl")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "abc"}, "too short"),
        ({"name": "a" * 33}, "too long"),
        ({"name": "my_etl1"}, "can only contain"),
        ({"name": "123abc"}, "start with"),
        ({"name": "good-name", "comm_type": "hpush", "arg_type": "url"}, 'requires comm-type "hpull://"'),
        ({"name": "good-name", "comm_type": "hrev", "arg_type": "fqn"}, 'arg-type "fqn" requires'),
        ({"name": "good-name", "comm_type": "carrier-pigeon"}, "unknown comm-type"),
        ({"name": "good-name", "runtime": "python2.7"}, "unsupported runtime"),
        ({"name": "good-name", "chunk_size": -1}, "chunk-size"),
        ({"name": "good-name", "transform": "not an identifier"}, "transform"),
    ],
)
def test_invalid_messages_are_rejected_before_anything_starts(
    api: AisEtl, kwargs: dict[str, object], message: str
) -> None:
    name = str(kwargs.pop("name"))
    with pytest.raises(ValidationError, match=message):
        api.init_code(name, UPPER, **kwargs)  # type: ignore[arg-type]
    assert api.list() == []


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("kind: Service\napiVersion: v1\n", "expected pod spec"),
        ("apiVersion: v1\nkind: Pod\nspec: [unclosed\n", "line"),
        ("apiVersion: v1\nkind: Pod\nspec:\n  containers: []\n", "number of containers"),
    ],
)
def test_invalid_specs_are_rejected(api: AisEtl, spec: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        api.init_spec("spec-etl", spec)
