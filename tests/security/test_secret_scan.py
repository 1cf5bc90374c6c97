"""Plant unique secrets, run every CLI command, then look for them everywhere another user could.

Planted: ``--env`` values (given as ``NAME`` so they come from the environment, and a literal in a
Pod spec's env). Searched: every command's stdout/stderr, every log under the home, every file
under the home and the test's directories that another user could read, and the command line of
every process on the machine while the ETLs run. The owner's results stay byte-exact.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import re
import stat
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from airflow_ais_etl.cli import main
from tests.local.conftest import UPPER
from tests.security.conftest import all_cmdlines

if TYPE_CHECKING:
    from collections.abc import Iterable

pytestmark = pytest.mark.integration

ENV_SECRET = f"planted-env-{uuid.uuid4().hex}"
URL_SECRET = f"planted-pw-{uuid.uuid4().hex}"
SPEC_SECRET = f"planted-spec-{uuid.uuid4().hex}"
SECRETS = (ENV_SECRET, URL_SECRET, SPEC_SECRET)

SPEC = """
apiVersion: v1
kind: Pod
metadata: {name: scan-spec}
spec:
  containers:
    - name: server
      image: airflow-ais-etl/runtime-python:3.11v2
      ports: [{name: default, containerPort: 8080}]
      env:
        - {name: AIS_ETL_CODE_DIR, value: "@CODE@"}
        - {name: API_KEY, value: "@SECRET@"}
      readinessProbe: {httpGet: {path: /health, port: default}}
"""


def with_base64_decoded(text: str) -> str:
    """Return ``text`` plus the decoding of every long base64 run in it (``view --json`` encodes specs)."""
    decoded = []
    for run in re.findall(r"[A-Za-z0-9+/]{24,}={0,2}", text):
        with contextlib.suppress(ValueError):
            decoded.append(base64.b64decode(run + "=" * (-len(run) % 4)).decode("utf-8", "replace"))
    return "\n".join([text, *decoded])


def files_under(root: Path) -> Iterable[Path]:
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            if p.is_file() and not p.is_symlink():
                yield p


def readable_by_others(root: Path, since: float) -> Iterable[Path]:
    """Files under ``root`` changed since ``since`` that others may read (directories they cannot enter pruned)."""
    for dirpath, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if _others_may_enter(Path(dirpath) / d)]
        for name in files:
            p = Path(dirpath) / name
            with contextlib.suppress(OSError):
                st = os.lstat(p)
                if stat.S_ISREG(st.st_mode) and st.st_mode & stat.S_IROTH and st.st_mtime >= since:
                    yield p


def _changed_since(path: Path, since: float) -> bool:
    try:
        return os.lstat(path).st_mtime >= since
    except OSError:
        return False


def _others_may_enter(path: Path) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and bool(st.st_mode & stat.S_IXOTH)


def test_no_planted_secret_leaks_from_any_command(
    home: Path,
    shared: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    started = time.time() - 1
    code = shared / "code.py"
    code.write_text(UPPER)
    code_dir = shared / "code"
    code_dir.mkdir()
    (code_dir / "code.py").write_text(UPPER)
    spec = shared / "spec.yaml"
    spec.write_text(SPEC.replace("@CODE@", str(code_dir)).replace("@SECRET@", SPEC_SECRET))
    spec.chmod(0o600)  # the user's own file: private, as a spec holding a secret should be
    src, dst = shared / "src", shared / "dst"
    src.mkdir()
    for i in range(6):
        (src / f"o{i}.txt").write_bytes(f"object {i}\n".encode() * 50)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ENV_SECRET)
    monkeypatch.setenv("DB_URL", f"postgres://user:{URL_SECRET}@db.example/x")
    caplog.set_level(logging.DEBUG)
    outputs: list[str] = []
    cmdlines: list[str] = []

    def cli(*argv: str, ok: bool = True) -> str:
        code = main(list(argv))  # in-process: the processes it starts are what ps would show
        out, err = capsys.readouterr()
        outputs.extend([out, err])
        if ok:
            assert code == 0, (argv, out, err)
        return out

    cli("init", "code", "--name", "scan-code", "--from-file", str(code), "--comm-type", "hpull")
    cli(
        *("init", "code", "--name", "scan-env", "--from-file", str(code)),
        *("--env", "AWS_SECRET_ACCESS_KEY", "--env", "DB_URL"),
    )
    cli("init", "spec", "--name", "scan-spec", "--from-file", str(spec), "--env", "AWS_SECRET_ACCESS_KEY")
    cmdlines.extend(all_cmdlines().values())
    for json_flag in ((), ("--json",)):
        cli(*json_flag, "show")
        for name in ("scan-env", "scan-spec"):
            cli(*json_flag, "view", name)
            cli(*json_flag, "logs", name)
        cli(*json_flag, "health", "scan-spec")
        cli(*json_flag, "metrics", "scan-env")
        cli(*json_flag, "cluster", "show")
    for name in ("scan-env", "scan-spec"):
        out = cli("object", name, str(src / "o1.txt"), "-")
        assert out.encode() == (src / "o1.txt").read_bytes().upper()
        cli("bucket", name, str(src), str(dst / name), "--wait")
        cli("--json", "bucket", name, str(src), str(dst / f"{name}-2"), "--wait")
        for p in src.iterdir():
            assert (dst / name / p.name).read_bytes() == p.read_bytes().upper()
    cli("view", "nope", ok=False)
    cmdlines.extend(all_cmdlines().values())
    cli("stop", "scan-env")
    cli("start", "scan-env")
    cmdlines.extend(all_cmdlines().values())
    cli("logs", "scan-env")
    cli("stop", "--all")
    cli("rm", "--force", "scan-code")
    cli("show")

    outputs.append(caplog.text)
    for text in [with_base64_decoded(t) for t in outputs] + cmdlines:
        for s in SECRETS:
            assert s not in text, f"secret {s} in: {text[:2000]}"
    for path in files_under(home):
        data = path.read_bytes()
        mode = stat.S_IMODE(os.lstat(path).st_mode)
        assert mode & 0o077 == 0, f"{path} is {mode:o}"
        if path.suffix == ".log" or "logs" in path.parts:
            assert not any(s.encode() in data for s in SECRETS), f"secret in log {path}"
    tmp = Path(tempfile.gettempdir())  # what changed there during the test (other runs' trees skipped)
    roots = [shared] + [p for p in tmp.iterdir() if p != shared and _changed_since(p, started)]
    for root in roots:
        for path in [root] if root.is_file() else readable_by_others(root, started):
            with contextlib.suppress(OSError):
                data = path.read_bytes()
                assert not any(s.encode() in data for s in SECRETS), f"secret in {path}, readable by others"
