"""Validation (§1.8, §1.2, §11) including the deliberate fixes documented on ``validate``."""

from __future__ import annotations

import pytest

from airflow_ais_etl.etl.constants import HPULL, HPUSH, HREV, IO, MAX_CHUNK_SIZE
from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.msg import InitCodeMsg, InitSpecMsg
from airflow_ais_etl.etl.validation import validate, validate_name

GOOD_SPEC = """\
apiVersion: v1
kind: Pod
metadata:
  name: transformer
spec:
  containers:
    - name: server
      image: aistorage/transformer_md5:latest
      command: ["python", "/app/server.py"]
      ports:
        - name: default
          containerPort: 8000
      readinessProbe:
        httpGet:
          path: /health
          port: default
"""


def code_msg(**kw: object) -> InitCodeMsg:
    fields: dict[str, object] = {"name": "md5-etl", "code": "def transform(b):\n    return b\n"}
    fields["runtime"] = "python3.11v2"
    fields.update(kw)
    return InitCodeMsg(**fields)  # type: ignore[arg-type]


# -- names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("abcde", 'ETL name "abcde" is too short'),
        ("", 'ETL name "" is too short'),
        ("a" * 33, f'ETL name "{"a" * 33}" is too long'),
        ("my_etl1", 'ETL name "my_etl1" is invalid: can only contain [a-z0-9-]'),
        ("MyEtl12", 'ETL name "MyEtl12" is invalid: can only contain [a-z0-9-]'),
        ("my etl1", 'ETL name "my etl1" is invalid: can only contain [a-z0-9-]'),
        ("ätlätl", 'ETL name "ätlätl" is invalid: can only contain [a-z0-9-]'),
        ("-abcdef", 'ETL name "-abcdef" is invalid: must start with a lowercase letter'),
        ("123abc", 'ETL name "123abc" is invalid: must start with a lowercase letter'),
        ("abcdef-", 'ETL name "abcdef-" is invalid: must start with a lowercase letter'),
    ],
)
def test_bad_names(name: str, problem: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_name(name)
    text = str(info.value)
    assert text.startswith(problem)
    suggestion = text.rsplit("try ", 1)[1].strip('"')
    assert validate_name(suggestion) == suggestion


def test_dns_rule_explains_why() -> None:
    with pytest.raises(ValidationError, match=r"Kubernetes Pod, Service and label names \(DNS-1035"):
        validate_name("123abc")


@pytest.mark.parametrize("name", ["abcdef", "a" * 32, "md5-etl", "etl-1-2-3", "a1b2c3"])
def test_good_names(name: str) -> None:
    assert validate_name(name) == name


def test_name_length_counts_bytes() -> None:
    with pytest.raises(ValidationError, match="too long"):
        validate_name("é" * 17)  # 34 bytes


def test_name_error_in_validate_has_detail_and_no_context() -> None:
    with pytest.raises(ValidationError) as info:
        validate(code_msg(name="my_etl1"))
    assert info.value.etl_name == ""
    assert str(info.value).startswith('ETL name "my_etl1" is invalid')
    assert str(info.value).endswith(" [init-code[my_etl1---python3.11v2]]")


def test_name_is_checked_first() -> None:
    with pytest.raises(ValidationError, match="too short"):
        validate(code_msg(name="abc", comm_type="bogus", arg_type="nope", code=""))


# -- defaults and base rules ----------------------------------------------------------------------------


def test_defaults_are_filled_in_a_new_message() -> None:
    msg = code_msg()
    out = validate(msg)
    assert out is not msg
    assert (out.comm_type, out.timeout) == (HPUSH, 45.0)
    assert (msg.comm_type, msg.timeout) == ("", 0.0)
    assert validate(out) == out  # idempotent


def test_explicit_values_are_kept() -> None:
    out = validate(code_msg(comm_type=HREV, timeout=300))
    assert (out.comm_type, out.timeout) == (HREV, 300)


@pytest.mark.parametrize("comm", ["hpush", "://", "HPUSH://", "http://", "hpush:/"])
def test_unknown_comm_type(comm: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate(code_msg(comm_type=comm))
    err = info.value
    assert err.etl_name == "md5-etl"
    assert str(err).startswith(f'[etl="md5-etl"] unknown comm-type "{comm}"')
    assert str(err).endswith("[init-code[md5-etl-" + comm + "--python3.11v2]]")


def test_unknown_comm_type_suggests_the_full_form() -> None:
    with pytest.raises(ValidationError, match=r'did you mean "hpush://"\?'):
        validate(code_msg(comm_type="hpush"))


@pytest.mark.parametrize(
    ("arg", "comm"),
    [
        ("url", HPULL),
        ("", IO),
        ("", HPUSH),
        ("", HPULL),
        ("", HREV),
        ("fqn", HPUSH),
        ("fqn", HPULL),
        ("fqn", ""),
    ],
)
def test_allowed_arg_comm_combinations(arg: str, comm: str) -> None:
    out = validate(code_msg(arg_type=arg, comm_type=comm))
    assert out.arg_type == arg
    assert out.comm_type == (comm or HPUSH)


def test_fqn_with_empty_comm_is_accepted_because_the_default_comes_first() -> None:
    # The reference rejects this ('"" is not supported yet'); we default to hpush:// first.
    assert validate(code_msg(arg_type="fqn")).comm_type == HPUSH


@pytest.mark.parametrize(
    ("arg", "comm", "text"),
    [
        ("url", HPUSH, 'arg-type "url" requires comm-type "hpull://" ("hpush://" is not supported yet)'),
        ("url", "", 'arg-type "url" requires comm-type "hpull://" ("hpush://" is not supported yet)'),
        ("url", IO, 'arg-type "url" requires comm-type "hpull://" ("io://" is not supported yet)'),
        (
            "fqn",
            HREV,
            'arg-type "fqn" requires comm-type ("hpull://" or "hpush://") - "hrev://" is not supported yet',
        ),
        (
            "fqn",
            IO,
            'arg-type "fqn" requires comm-type ("hpull://" or "hpush://") - "io://" is not supported yet',
        ),
        ("bytes", HPUSH, 'unsupported arg-type "bytes"'),
    ],
)
def test_rejected_arg_comm_combinations(arg: str, comm: str, text: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate(code_msg(arg_type=arg, comm_type=comm))
    assert str(info.value).startswith(f'[etl="md5-etl"] {text}')
    assert str(info.value).endswith("]]")


def test_fqn_feature_flag() -> None:
    with pytest.raises(
        ValidationError, match=r'arg-type "fqn" is not permitted by the configured feature flags'
    ):
        validate(code_msg(arg_type="fqn", comm_type=HPUSH), allow_fqn=False)
    assert validate(code_msg(arg_type="", comm_type=HPUSH), allow_fqn=False).arg_type == ""


@pytest.mark.parametrize("timeout", [-1.0, float("nan"), float("inf")])
def test_bad_timeouts(timeout: float) -> None:
    with pytest.raises(ValidationError, match="timeout .* is invalid"):
        validate(code_msg(timeout=timeout))


def test_field_types_are_checked() -> None:
    with pytest.raises(ValidationError, match=r"InitCodeMsg\.chunk_size must be an integer"):
        validate(code_msg(chunk_size="5"))
    with pytest.raises(ValidationError, match=r"InitCodeMsg\.name must be a string"):
        validate(code_msg(name=None))
    with pytest.raises(ValidationError, match=r"InitCodeMsg\.timeout must be a number"):
        validate(code_msg(timeout="45s"))


def test_base_message_type_is_rejected() -> None:
    from airflow_ais_etl.etl.msg import InitMsg

    with pytest.raises(TypeError):
        validate(InitMsg(name="abcdef"))


# -- init code ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "text"),
    [
        ({"code": ""}, 'source code is empty ("python3.11v2")'),
        ({"runtime": ""}, 'runtime is not specified (comm-type "hpush://")'),
        (
            {"runtime": "python3.8v2"},
            'unsupported runtime "python3.8v2" (supported: [python3.10v2 python3.11v2 python3.12v2 python3.13v2])',
        ),
        ({"transform": ""}, 'transform function cannot be empty (comm-type "hpush://", funcs {Transform:})'),
        ({"transform": "1abc"}, 'transform function "1abc" is not a valid Python identifier'),
        ({"transform": "my-fn"}, 'transform function "my-fn" is not a valid Python identifier'),
        ({"transform": "mod.fn"}, 'transform function "mod.fn" is not a valid Python identifier'),
        ({"transform": "class"}, 'transform function "class" is not a valid Python identifier'),
        ({"transform": "a: b #c"}, 'transform function "a: b #c" is not a valid Python identifier'),
        (
            {"chunk_size": -1},
            'chunk-size -1 is invalid, expecting 0 <= chunk-size <= MiB (comm-type "hpush://", runtime "python3.11v2")',
        ),
        ({"chunk_size": MAX_CHUNK_SIZE + 1}, f"chunk-size {MAX_CHUNK_SIZE + 1} is invalid"),
        ({"flags": -1}, "flags -1 is invalid, expecting flags >= 0"),
        ({"code": "a\x00b"}, "AISTORE_CODE contains a NUL byte"),
        ({"dependencies": "x" * 200_000}, "dependencies too large (200000 bytes)"),
        ({"code": "#" * 131_060}, "source code too large (131060 bytes)"),
    ],
)
def test_code_rules(kw: dict[str, object], text: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate(code_msg(**kw))
    assert str(info.value).startswith(text)
    assert info.value.etl_name == ""  # plain errors, as the reference


@pytest.mark.parametrize(
    "kw",
    [
        {"chunk_size": 0},
        {"chunk_size": MAX_CHUNK_SIZE},
        {"flags": 5},
        {"transform": "_private"},
        {"transform": "tränsform"},
        {"code": "#" * 131_000},
        {"runtime": "python3.13v2", "comm_type": IO},
        {"dependencies": "numpy\n"},
    ],
)
def test_code_accepted(kw: dict[str, object]) -> None:
    validate(code_msg(**kw))


def test_code_rules_run_after_base_rules() -> None:
    with pytest.raises(ValidationError, match="unknown comm-type"):
        validate(code_msg(comm_type="x", code=""))


# -- init spec ------------------------------------------------------------------------------------------


def spec_msg(spec: str, **kw: object) -> InitSpecMsg:
    return InitSpecMsg(name="spec-etl", spec=spec, **kw)  # type: ignore[arg-type]


def test_good_spec() -> None:
    out = validate(spec_msg(GOOD_SPEC))
    assert isinstance(out, InitSpecMsg)
    assert out.spec == GOOD_SPEC
    assert (out.comm_type, out.timeout) == (HPUSH, 45.0)


@pytest.mark.parametrize(
    ("old", "new", "text"),
    [
        (
            "  containers:\n",
            "  containers:\n    - name: side\n      image: busybox\n",
            "unsupported number of containers (2), expected: 1",
        ),
        (
            "          containerPort: 8000\n",
            "          containerPort: 8000\n        - name: x\n          containerPort: 1\n",
            "unsupported number of container ports (2), expected: 1",
        ),
        ("        - name: default\n", "        - name: http\n", 'expected port name: "default", got: "http"'),
        (
            "      readinessProbe:\n        httpGet:\n          path: /health\n          port: default\n",
            "",
            "readinessProbe section is required in a container spec",
        ),
        (
            "        httpGet:\n          path: /health\n          port: default\n",
            "        exec:\n          command: [x]\n",
            "httpGet missing in the readinessProbe",
        ),
        ("          path: /health\n", "          path: ''\n", "expected non-empty path for readinessProbe"),
        (
            "          port: default\n",
            "          port: 8000\n",
            'readinessProbe port must be the "default" port',
        ),
        ("      image: aistorage/transformer_md5:latest\n", "", 'container "server" has no image'),
        (
            "          containerPort: 8000\n",
            "          containerPort: '8000'\n",
            "containerPort '8000' is invalid",
        ),
        (
            '      command: ["python", "/app/server.py"]\n',
            "      command: python\n",
            "spec.containers[0].command must be a list of strings",
        ),
    ],
)
def test_spec_rules(old: str, new: str, text: str) -> None:
    assert old in GOOD_SPEC
    with pytest.raises(ValidationError) as info:
        validate(spec_msg(GOOD_SPEC.replace(old, new, 1)))
    assert str(info.value).startswith(f'[etl="spec-etl"] {text}')


AFFINITY = {
    "node-required": (
        (
            "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "        nodeSelectorTerms:\n          - matchExpressions:\n"
            "              - {key: disk, operator: In, values: [ssd]}\n"
        ),
        "error in YAML spec: pod should not have any NodeAffinities defined",
    ),
    "node-preferred": (
        (
            "  affinity:\n    nodeAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution:\n"
            "        - weight: 1\n          preference: {matchExpressions: [{key: a, operator: Exists}]}\n"
        ),
        "error in YAML spec: pod should not have any NodeAffinities defined",
    ),
    "pod-anti": (
        (
            "  affinity:\n    podAntiAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
            "        - labelSelector: {matchLabels: {app: ais}}\n          topologyKey: kubernetes.io/hostname\n"
        ),
        "error in YAML spec, pod should not have any NodeAntiAffinities defined",
    ),
}


@pytest.mark.parametrize("case", sorted(AFFINITY))
def test_spec_affinity_is_refused_at_validation(case: str) -> None:
    extra, text = AFFINITY[case]
    with pytest.raises(ValidationError) as info:
        validate(spec_msg(GOOD_SPEC + extra))
    assert str(info.value).startswith(f'[etl="spec-etl"] {text} (remove spec.affinity.')


def test_spec_with_empty_node_affinity_and_pod_affinity_is_fine() -> None:
    extra = (
        "  affinity:\n    nodeAffinity:\n      requiredDuringSchedulingIgnoredDuringExecution:\n"
        "        nodeSelectorTerms: []\n    podAffinity:\n      preferredDuringSchedulingIgnoredDuringExecution: []\n"
    )
    validate(spec_msg(GOOD_SPEC + extra))


def test_spec_node_name_is_refused() -> None:
    with pytest.raises(ValidationError, match="spec.nodeName must not be set"):
        validate(spec_msg(GOOD_SPEC + "  nodeName: node-1\n"))


def test_io_spec_needs_a_command() -> None:
    spec = GOOD_SPEC.replace('      command: ["python", "/app/server.py"]\n', "")
    validate(spec_msg(spec, comm_type=HPUSH))
    with pytest.raises(ValidationError, match=r"io:// requires spec\.containers\[0\]\.command"):
        validate(spec_msg(spec, comm_type=IO))


def test_broken_spec_yaml_reports_line_and_column() -> None:
    with pytest.raises(ValidationError) as info:
        validate(spec_msg("apiVersion: v1\nkind: Pod\nspec: [a, b\n"))
    assert str(info.value).startswith('[etl="spec-etl"] failed to parse pod spec: ')
    assert "line 4, column 1" in str(info.value)


def test_spec_not_a_pod() -> None:
    with pytest.raises(ValidationError, match=r'^\[etl="spec-etl"\] expected pod spec, got: Deployment'):
        validate(spec_msg("apiVersion: apps/v1\nkind: Deployment\n"))
