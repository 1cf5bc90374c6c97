"""AIStore's own transformer servers as init-spec pods on the local backend (one pod per server).

Each server runs once for the whole module; the cases vary what the engine sends (comm type, arg
type, etl_args, direct put) over the same pod, exactly as an ETL of that kind would send it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from airflow_ais_etl.cluster.local.backend import LocalBackend
from airflow_ais_etl.service import AisEtl

if TYPE_CHECKING:
    from collections.abc import Iterator

    from airflow_ais_etl.etl.msg import InitMsg

SERVERS = ("fastapi", "flask", "http")
SCRIPT = Path(__file__).with_name("aisserver.py")


def pod_spec(kind: str, port: int = 8000) -> str:
    """An AIS-style pod.yaml whose container runs AIS's ``kind`` server (cf. ais-etl transformers)."""
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"ais-{kind}"},
            "spec": {
                "containers": [
                    {
                        "name": "server",
                        "image": "aistorage/transformer_reverse:latest",
                        "command": ["python", str(SCRIPT), kind],
                        "ports": [{"name": "default", "containerPort": port}],
                        "env": [{"name": "PORT", "value": str(port)}],
                        "readinessProbe": {"httpGet": {"path": "/health", "port": "default"}},
                    }
                ]
            },
        }
    )


def make_bucket(root: Path, count: int) -> dict[str, bytes]:
    """Objects with awkward names and sizes (one over 1 MiB: the engine streams it)."""
    root.mkdir(parents=True)
    data: dict[str, bytes] = {}
    for i in range(count):
        name = f"d{i % 3}/obj {i}%41.bin" if i % 4 == 0 else f"d{i % 3}/o{i}.txt"
        data[name] = bytes((i * 7 + j) % 251 for j in range(37 * i + 1))
    data["big/blob.bin"] = bytes(range(256)) * 4200
    for name, payload in data.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(payload)
    return data


@pytest.fixture(scope="module")
def ais_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One local cluster (a single target) for the module; everything is stopped at the end."""
    home = tmp_path_factory.mktemp("ais-servers") / "home"
    yield home
    LocalBackend(home).shutdown()


@pytest.fixture(scope="module")
def ais_api(ais_home: Path) -> AisEtl:
    return AisEtl(LocalBackend(ais_home, default_targets=1))


@pytest.fixture(scope="module")
def ais_server(request: pytest.FixtureRequest, ais_api: AisEtl) -> Iterator[tuple[AisEtl, InitMsg]]:
    """One ETL on AIS's ``request.param`` server (defined hpush + fqn + direct put)."""
    kind = request.param
    name = f"ais-{kind}-etl"
    ais_api.init_spec(name, pod_spec(kind), comm_type="hpush", arg_type="fqn", direct_put=True)
    yield ais_api, ais_api.view(name)
    ais_api.stop(name)


def server_params(*kinds: str) -> list[Any]:
    """One parameter per AIS server, each on its own xdist worker (its pod is started once)."""
    return [
        pytest.param(kind, id=kind, marks=pytest.mark.xdist_group(f"ais-{kind}")) for kind in kinds or SERVERS
    ]


def variant(msg: InitMsg, comm_type: str, arg_type: str, *, direct_put: bool = False) -> InitMsg:
    """The same ETL, as if defined with ``comm_type``/``arg_type`` (the pod serves them all)."""
    return dataclasses.replace(msg, comm_type=comm_type, arg_type=arg_type, direct_put=direct_put)
