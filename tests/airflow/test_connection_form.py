"""Connections saved through Airflow's own connection form machinery reach the hook and the backend.

The path is the one the Airflow 3 UI takes. The api-server describes the form
(``GET /ui/connections/hook_meta``, built by the providers manager from our ``conn-fields``); the
React form turns its fields into the ``extra`` JSON (one key per field: :func:`form_extra` mirrors
it, and a test runs the UI bundle's own code to prove the mirror right); ``POST /api/v2/connections``
saves it in the metadata database, from which the hook reads it back as server components do.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import airflow
import pytest
from airflow._shared.secrets_masker import should_hide_value_for_key

from airflow_ais_etl.cluster.kubernetes.backend import KubernetesBackend
from airflow_ais_etl.cluster.kubernetes.gateway import GATEWAY_CONTAINER
from airflow_ais_etl.etl.errors import EtlError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.hooks.settings import AisEtlSettings, parse_extras, setting_fields, spec_of
from tests.k8s_emulator.plugin import NODE_LABELS
from tests.kubernetes.conftest import UPPER, claim_volume

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

    from tests.k8s_emulator.emulator import K8sEmulator

# Every test saves through the api-server app (airflow_db); the app (module-scoped, ~10 s to create)
# is made once when one xdist worker runs the whole module.
pytestmark = [pytest.mark.integration, pytest.mark.xdist_group("airflow-connection-form")]

KUBERNETES_SETTINGS = [f.name for f in setting_fields() if spec_of(f).backend == "kubernetes"]
_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "array": (list,),
    "object": (dict,),
}


@pytest.fixture(scope="module")
def api_client(airflow_db: Path) -> Iterator[TestClient]:
    """Return a client of Airflow's api-server app, signed in as an admin."""
    from airflow.api_fastapi.app import create_app, get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi.testclient import TestClient

    with pytest.MonkeyPatch.context() as env:
        env.setenv("AIRFLOW__API_AUTH__JWT_SECRET", "form-test-" * 8)  # long enough for HS512
        app = create_app("core")
        token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="form-test", role="admin"))
        with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as client:
            yield client


@pytest.fixture
def server_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """Read connections as server components do: from the metadata database."""
    monkeypatch.setenv("_AIRFLOW_PROCESS_CONTEXT", "server")


def hook_meta(client: TestClient) -> dict[str, Any]:
    """Return the form description the UI fetches for the ``ais_etl`` connection type."""
    response = client.get("/ui/connections/hook_meta")
    assert response.status_code == 200, response.text
    (ours,) = [m for m in response.json() if m["connection_type"] == "ais_etl"]
    return ours


def fill_form(meta: dict[str, Any], typed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Return the form's fields after a user typed ``typed`` into them (the widgets only yield their type)."""
    fields = json.loads(json.dumps(meta["extra_fields"]))
    for name, value in typed.items():
        assert name in fields, f"the connection form has no field {name!r}"
        schema = fields[name]["schema"]
        (json_type,) = [t for t in schema["type"] if t != "null"]
        assert isinstance(value, _JSON_TYPES[json_type]), (
            f"{name}: a {json_type} widget cannot yield {value!r}"
        )
        assert value in schema.get("enum", [value]), f"{name}: {value!r} is not in the drop-down"
        fields[name]["value"] = value
    return fields


def form_extra(fields: dict[str, dict[str, Any]]) -> str:
    """Serialise the form's fields into ``extra`` as the UI's param store does (every field's value)."""
    return json.dumps({name: field["value"] for name, field in fields.items()}, indent=2)


def save(client: TestClient, conn_id: str, extra: str) -> None:
    """Save an ``ais_etl`` connection through the public REST API, as the form's Save button does."""
    client.delete(f"/api/v2/connections/{conn_id}")
    body = {"connection_id": conn_id, "conn_type": "ais_etl", "extra": extra}
    response = client.post("/api/v2/connections", json=body)
    assert response.status_code == 201, response.text


def test_form_offers_every_setting_with_label_help_and_no_null_prefill(api_client: TestClient) -> None:
    meta = hook_meta(api_client)
    fields = meta["extra_fields"]
    assert list(fields) == [f.name for f in setting_fields()]
    for f in setting_fields():
        field = fields[f.name]
        assert field["schema"]["title"], f.name
        assert field["description"], f.name
        assert field["value"] != "***", f"a fresh form would save {f.name} as ***"
        assert should_hide_value_for_key(f.name) == spec_of(f).masked, f.name
        assert (field["value"] is None) == spec_of(f).masked, f"{f.name} would be pre-filled with null"
    assert fields["namespace"]["schema"]["examples"] == ["ais"]
    assert {fields[n]["schema"]["section"] for n in KUBERNETES_SETTINGS} == {"Kubernetes backend"}
    assert fields["address"]["schema"]["enum"] == ["pod-ip", "service"]
    hidden = {name for name, f in meta["standard_fields"].items() if f and f["hidden"]}
    assert hidden == {"host", "port", "login", "password", "url_schema"}

    fresh = json.loads(form_extra(fill_form(meta, {})))
    assert parse_extras(fresh) == AisEtlSettings()


def test_ui_bundle_serialises_the_form_like_form_extra(api_client: TestClient) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: cannot run the UI bundle's serialiser")
    pattern = re.compile(
        r"JSON\.stringify\(Object\.fromEntries\(Object\.entries\((\w+)\)\.map\(\(\[(\w+),\{value:(\w+)\}\]\)"
        r"=>\[\2,\3\]\)\),void 0,2\)"
    )
    bundles = sorted((Path(airflow.__file__).parent / "ui" / "dist" / "assets").glob("*.js"))
    matches = [m for b in bundles if (m := pattern.search(b.read_text(errors="replace")))]
    assert matches, "the UI's param store no longer serialises fields this way: re-check form_extra"
    expression, variable = matches[0].group(0), matches[0].group(1)
    fields = fill_form(hook_meta(api_client), {"namespace": "ais", "stop_grace": 4, "shared_paths": ["/a"]})
    script = f"const f = ({variable}) => {expression}; process.stdout.write(f(JSON.parse(process.argv[1])));"
    run = subprocess.run(
        [node, "-e", script, json.dumps(fields)], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(run.stdout) == json.loads(form_extra(fields))


def test_every_kubernetes_setting_saved_from_the_form_reaches_the_backend(
    api_client: TestClient,
    server_context: None,
    kubernetes_conn_env: str,
    k8s_emulator: K8sEmulator,
    tmp_path: Path,
) -> None:
    shared = tmp_path / "shared"
    typed: dict[str, Any] = {
        "backend": "kubernetes",
        "kubernetes_conn_id": kubernetes_conn_env,
        "namespace": "ais-form",
        "node_selector": dict(NODE_LABELS),
        "address": "service",
        "scheduling_timeout": 5,
        "stop_grace": 3,
        "stop_timeout": 7.5,
        "shared_paths": [str(shared)],
        "mount_shared_paths": False,
        "buckets_file": str(tmp_path / "buckets.json"),
        "gateway_image": "registry.example/ais-gateway:form",
        "gateway_port": 9091,
        "gateway_secret_name": "s3-creds",
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "image_pull_secrets": ["regcred"],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ais", "effect": "NoSchedule"}],
        "pod_labels": {"team": "data"},
        "pod_annotations": {"example.com/owner": "form"},
        "service_account_name": "ais-etl",
        "priority_class_name": "etl-high",
        "image_pull_policy": "Always",
        "volume_claims": {str(tmp_path / "claimed"): "form-claim"},
        "network_policy": True,
        "network_policy_namespaces": {"kubernetes.io/metadata.name": "airflow"},
        "network_policy_pods": {"component": "worker"},
    }
    assert set(KUBERNETES_SETTINGS) <= set(typed)
    save(api_client, "ais_etl_form_k8s", form_extra(fill_form(hook_meta(api_client), typed)))

    hook = AisEtlHook("ais_etl_form_k8s")
    backend = hook.api.backend
    assert isinstance(backend, KubernetesBackend)
    try:
        resolved = {
            "shared_paths": (str(shared.resolve()),),
            "buckets_file": str(Path(typed["buckets_file"]).resolve()),
            "image_pull_secrets": tuple(typed["image_pull_secrets"]),
            "tolerations": tuple(typed["tolerations"]),
            "volume_claims": {str(tmp_path / "claimed"): {"claim_name": "form-claim", "read_only": True}},
        }
        expected = {**typed, **resolved}
        knobs = backend.pod_knobs
        seen = {
            name: getattr(knobs if hasattr(knobs, name) else backend, name)
            for name in KUBERNETES_SETTINGS
            if name != "kubernetes_conn_id"
        }
        assert seen == {name: expected[name] for name in seen}
        assert backend.kube.hook.conn_id == kubernetes_conn_env

        backend.kube.core.create_namespace({"metadata": {"name": "ais-form"}})
        claim_volume(backend, str(tmp_path / "claimed"), "form-claim")
        k8s_emulator.add_node("node-unlabelled", {})
        assert [t.id for t in backend.targets()] == ["node-a", "node-b"]

        k8s_emulator.fail_image(typed["gateway_image"])
        with pytest.raises(EtlError, match="ErrImagePull|ImagePullBackOff"):
            hook.api.init_code("form-etl", UPPER)
    finally:
        backend.close()
    pods = k8s_emulator.received_objects("pods", "create")
    assert len(pods) == 2
    for pod in pods:
        assert pod["metadata"]["namespace"] == "ais-form"
        (gateway,) = [c for c in pod["spec"]["initContainers"] if c["name"] == GATEWAY_CONTAINER]
        assert gateway["image"] == typed["gateway_image"]
        assert gateway["envFrom"] == [{"secretRef": {"name": "s3-creds"}}]
        assert gateway["ports"][0]["containerPort"] == 9091
        assert expected["buckets_file"] in gateway["args"]
        assert not [v for v in pod["spec"].get("volumes", []) if "hostPath" in v]
        assert pod["spec"]["containers"][0]["resources"] == typed["resources"]
        assert pod["spec"]["imagePullSecrets"] == [{"name": "regcred"}]
        assert pod["spec"]["tolerations"] == typed["tolerations"]
        assert pod["spec"]["serviceAccountName"] == "ais-etl"
        assert pod["spec"]["priorityClassName"] == "etl-high"
        assert pod["metadata"]["labels"]["team"] == "data"
        assert pod["metadata"]["annotations"]["example.com/owner"] == "form"
        (claim,) = [
            v["persistentVolumeClaim"] for v in pod["spec"]["volumes"] if "persistentVolumeClaim" in v
        ]
        assert claim == {"claimName": "form-claim", "readOnly": True}
        everything = pod["spec"]["containers"] + pod["spec"]["initContainers"]
        assert {c["imagePullPolicy"] for c in everything} == {"Always"}
    (policy,) = k8s_emulator.received_objects("networkpolicies", "create")
    assert policy["spec"]["ingress"][0]["from"][0] == {
        "namespaceSelector": {"matchLabels": typed["network_policy_namespaces"]},
        "podSelector": {"matchLabels": typed["network_policy_pods"]},
    }


def test_local_settings_saved_from_the_form_reach_the_hook(
    api_client: TestClient, server_context: None, tmp_path: Path
) -> None:
    typed = {"home": str(tmp_path / "home"), "link_template": "https://g.example/d?etl={etl_name}"}
    save(api_client, "ais_etl_form_local", form_extra(fill_form(hook_meta(api_client), typed)))
    hook = AisEtlHook("ais_etl_form_local")
    assert hook.settings == AisEtlSettings(**typed)
    assert hook.api.backend.state.home == tmp_path / "home"
    assert hook.etl_url("e1") == "https://g.example/d?etl=e1"


def test_extras_written_as_json_with_the_legacy_prefix_are_read_back(
    api_client: TestClient, server_context: None
) -> None:
    extra = {"extra__ais_etl__backend": "kubernetes", "extra__ais_etl__gateway_port": "9000", "stop_grace": 2}
    save(api_client, "ais_etl_form_legacy", json.dumps(extra))
    settings = AisEtlHook("ais_etl_form_legacy").settings
    assert (settings.backend, settings.gateway_port, settings.stop_grace) == ("kubernetes", 9000, 2)


def test_an_unknown_extra_saved_by_hand_fails_listing_the_known_ones(
    api_client: TestClient, server_context: None
) -> None:
    save(api_client, "ais_etl_form_typo", json.dumps({"namespce": "ais"}))
    with pytest.raises(ValueError, match=r"unknown ais_etl connection extra\(s\) 'namespce'") as err:
        _ = AisEtlHook("ais_etl_form_typo").settings
    assert all(f.name in str(err.value) for f in setting_fields())
