from __future__ import annotations

import functools
import threading
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
from airflow_ais_etl.etl.errors import AbortError, EtlExistsError, EtlNotFoundError, ValidationError
from airflow_ais_etl.exceptions import AisEtlTaskKilledError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.operators.args import callable_source, resolve_code, resolve_spec
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator
from airflow_ais_etl.service import EtlInfo

if TYPE_CHECKING:
    from pathlib import Path


def shout(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data.upper())


def _decorate(func):  # type: ignore[no-untyped-def]
    @functools.wraps(func)
    def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
        return func(*args, **kwargs)

    return wrapper


@_decorate
def decorated(data: bytes) -> bytes:
    return data[::-1]


def _info(name: str = "my-etl", state: str = "running", cause: str = "") -> EtlInfo:
    return EtlInfo(name, "code", "hpush://", "", "python3.11v2", state, 2 if state == "running" else 0, cause)


def _hook() -> mock.MagicMock:
    hook = mock.create_autospec(AisEtlHook, instance=True)
    hook.etl_url.return_value = "file:///tmp/etl"
    hook.init_code.return_value = _info()
    hook.init_spec.return_value = _info()
    hook.info.return_value = _info()
    return hook


def _with_hook(
    op: AisEtlInitCodeOperator
    | AisEtlBucketTransformOperator
    | AisEtlStopOperator
    | AisEtlInitSpecOperator
    | AisEtlObjectTransformOperator,
    hook: mock.MagicMock,
) -> None:
    op.__dict__["hook"] = hook


def _ctx(try_number: int = 1) -> dict:
    return {"ti": mock.MagicMock(try_number=try_number)}


# ---------------------------------------------------------------------- code and spec arguments
def test_callable_source_ships_only_the_function() -> None:
    source, name = callable_source(shout)
    assert name == "shout"
    assert source.startswith("def shout(data: bytes) -> bytes:\n")
    assert "import zlib" in source
    assert "_decorate" not in source
    namespace: dict = {}
    exec(compile(source, "code.py", "exec"), namespace)
    assert namespace["shout"](b"ab") == shout(b"ab")


def test_callable_source_strips_decorators_and_dedents() -> None:
    source, name = callable_source(decorated)
    assert name == "decorated"
    assert source.startswith("def decorated(")

    def nested(data: bytes) -> bytes:
        return data

    source, _ = callable_source(nested)
    assert source.startswith("def nested(")


def test_callable_source_rejects_lambdas_and_closures() -> None:
    with pytest.raises(TypeError, match="lambda"):
        callable_source(lambda data: data)
    factor = 2

    def closure(data: bytes) -> bytes:
        return data * factor

    with pytest.raises(TypeError, match="factor"):
        callable_source(closure)


def test_resolve_code_sources(tmp_path: Path) -> None:
    path = tmp_path / "t.py"
    path.write_text("def go(b):\n    return b\n")
    assert resolve_code(None, str(path), None, "go") == (path.read_text(), "go")
    assert resolve_code("def transform(b): return b", None, None, None)[1] == "transform"
    with pytest.raises(ValueError, match="exactly one"):
        resolve_code("x", str(path), None, None)
    with pytest.raises(ValueError, match="exactly one"):
        resolve_code(None, None, None, None)
    with pytest.raises(ValueError, match="does not exist"):
        resolve_code(None, str(tmp_path / "nope.py"), None, None)
    with pytest.raises(ValueError, match="identifier"):
        resolve_code("x", None, None, "not-a-name")


def test_resolve_spec_forms(tmp_path: Path) -> None:
    spec = {"apiVersion": "v1", "kind": "Pod"}
    assert "kind: Pod" in resolve_spec(spec)
    path = tmp_path / "pod.yaml"
    path.write_text("kind: Pod\n")
    assert resolve_spec(str(path)) == "kind: Pod\n"
    assert resolve_spec('{"kind": "Pod"}') == '{"kind": "Pod"}'
    with pytest.raises(ValueError, match="does not exist"):
        resolve_spec(str(tmp_path / "missing.yaml"))
    with pytest.raises(TypeError):
        resolve_spec(42)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- template fields and validation
def test_template_fields() -> None:
    assert {"etl_name", "code_file", "dependencies", "env", "comm_type"} <= set(
        AisEtlInitCodeOperator.template_fields
    )
    assert "code" not in AisEtlInitCodeOperator.template_fields
    assert {"etl_name", "spec"} <= set(AisEtlInitSpecOperator.template_fields)
    assert {"etl_name", "src", "dst", "prefix", "objects", "template", "ext", "etl_definition"} <= set(
        AisEtlBucketTransformOperator.template_fields
    )
    assert {"etl_name", "src", "obj", "dst", "local_file"} <= set(
        AisEtlObjectTransformOperator.template_fields
    )
    assert set(AisEtlStopOperator.template_fields) == {"etl_name", "ais_etl_conn_id"}
    for cls in (
        AisEtlInitCodeOperator,
        AisEtlInitSpecOperator,
        AisEtlBucketTransformOperator,
        AisEtlStopOperator,
    ):
        assert "ais_etl_conn_id" in cls.template_fields


@pytest.mark.parametrize(
    ("op", "cause"),
    [
        (lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl"), ValueError),
        (
            lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl", code="x", python_callable=shout),
            ValueError,
        ),
        (
            lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl", code="x", chunk_size="lots"),
            TypeError,
        ),
        (lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl", code="x", env=["A=1"]), TypeError),
        (lambda: AisEtlInitSpecOperator(task_id="t", etl_name="my-etl", spec=""), ValueError),
        (lambda: AisEtlStopOperator(task_id="t"), ValueError),
        (lambda: AisEtlStopOperator(task_id="t", etl_name="my-etl", all_etls=True), ValueError),
        (lambda: AisEtlBucketTransformOperator(task_id="t", etl_name="my-etl", src="", dst="/d"), ValueError),
        (
            lambda: AisEtlBucketTransformOperator(
                task_id="t", etl_name="my-etl", src="/s", dst="/d", num_workers=0
            ),
            ValueError,
        ),
        (
            lambda: AisEtlBucketTransformOperator(
                task_id="t", etl_name="my-etl", src="/s", dst="/d", objects="a.txt"
            ),
            TypeError,
        ),
        (
            lambda: AisEtlBucketTransformOperator(
                task_id="t", etl_name="my-etl", src="/s", dst="/d", prefix="a/", template="b-{0..3}"
            ),
            ValidationError,
        ),
        (
            lambda: AisEtlBucketTransformOperator(
                task_id="t", etl_name="my-etl", src="/s", dst="/d", etl_definition={"kind": "zip"}
            ),
            ValueError,
        ),
        (
            lambda: AisEtlObjectTransformOperator(task_id="t", etl_name="my-etl", src="/s", obj="o"),
            ValueError,
        ),
        (
            lambda: AisEtlObjectTransformOperator(
                task_id="t", etl_name="my-etl", src="/s", obj="o", dst="/d", local_file="/f"
            ),
            ValueError,
        ),
    ],
)
def test_bad_arguments_fail_in_execute_without_retry(op, cause: type[Exception]) -> None:  # type: ignore[no-untyped-def]
    operator = op()  # __init__ only assigns: no error yet
    hook = _hook()
    _with_hook(operator, hook)
    with pytest.raises(AirflowFailException) as info:
        operator.execute(_ctx())
    assert isinstance(info.value.__cause__, cause)
    hook.transform_bucket.assert_not_called()


def test_init_code_from_callable_calls_the_hook() -> None:
    op = AisEtlInitCodeOperator(
        task_id="t",
        etl_name="my-etl",
        python_callable=shout,
        dependencies=["zstandard", "numpy==2.0"],
        chunk_size="0",
        timeout="2m",
        env={"N": 3},
    )
    hook = _hook()
    _with_hook(op, hook)
    ctx = _ctx()
    assert op.execute(ctx) == _info().to_dict()
    name, code = hook.init_code.call_args.args
    kwargs = hook.init_code.call_args.kwargs
    assert name == "my-etl"
    assert code.startswith("def shout(")
    assert kwargs["transform"] == "shout"
    assert kwargs["dependencies"] == "zstandard\nnumpy==2.0\n"
    assert kwargs["timeout"] == "2m"
    assert kwargs["chunk_size"] == 0
    assert kwargs["extra_env"] == {"N": "3"}
    ctx["ti"].xcom_push.assert_called_once_with(key="ais_etl_link", value="file:///tmp/etl")


def test_init_conflict_fails_without_retry() -> None:
    op = AisEtlInitSpecOperator(task_id="t", etl_name="my-etl", spec={"kind": "Pod"})
    hook = _hook()
    hook.init_spec.side_effect = EtlExistsError(
        "etl already exists with a different definition", etl_name="my-etl"
    )
    _with_hook(op, hook)
    with pytest.raises(AirflowFailException, match="different definition"):
        op.execute(_ctx())


def test_stop_is_idempotent() -> None:
    op = AisEtlStopOperator(task_id="t", etl_name="my-etl")
    hook = _hook()
    _with_hook(op, hook)
    hook.stop.return_value = True
    assert op.execute(_ctx()) == {"stopped": ["my-etl"]}
    hook.stop.return_value = False
    assert op.execute(_ctx()) == {"stopped": []}
    hook.stop.side_effect = EtlNotFoundError("etl job my-etl does not exist", etl_name="my-etl")
    assert op.execute(_ctx()) == {"stopped": []}
    every = AisEtlStopOperator(task_id="all", all_etls=True)
    _with_hook(every, hook)
    hook.stop_all.return_value = ["a-etl", "b-etl"]
    assert every.execute(_ctx()) == {"stopped": ["a-etl", "b-etl"]}


# ---------------------------------------------------------------------- bucket transform
def _transform(**kwargs: object) -> AisEtlBucketTransformOperator:
    args = {"task_id": "t", "etl_name": "my-etl", "src": "/s", "dst": "/d", **kwargs}
    return AisEtlBucketTransformOperator(**args)  # type: ignore[arg-type]


def _stats(**kw: object) -> dict:
    base = {"objects": 3, "planned_objects": 10, "skipped": 0, "error_count": 0, "src": "/s", "dst": "/d"}
    return {**base, **kw}


def test_bucket_transform_passes_options_and_returns_stats() -> None:
    op = _transform(
        prefix="a/", ext={"jpg": "txt"}, num_workers="3", progress_interval="2", request_timeout=5
    )
    hook = _hook()
    hook.transform_bucket.return_value = _stats(objects=10)
    _with_hook(op, hook)
    assert op.execute(_ctx()) == _stats(objects=10)
    (name, src, dst, options), kwargs = hook.transform_bucket.call_args
    assert (name, src, dst) == ("my-etl", "/s", "/d")
    assert options == OfflineOptions(
        prefix="a/", ext={"jpg": "txt"}, num_workers=3, progress_interval=2.0, request_timeout=5.0
    )
    assert isinstance(kwargs["control"], JobControl)
    hook.start.assert_not_called()


def test_progress_is_logged_with_progress_line(capfd: pytest.CaptureFixture[str]) -> None:
    op = _transform()
    snapshot = {
        **_stats(),
        "bytes_in": 2048,
        "bytes_out": 1024,
        "rate_objects": 1.5,
        "rate_bytes": 100.0,
        "elapsed": 2.0,
        "eta": 4.0,
    }
    op._log_progress(snapshot)
    assert "etl my-etl: 3/10 objects (30.0%), 2.0KiB in, 1.0KiB out" in capfd.readouterr().out


def test_retry_resumes_with_skip_existing() -> None:
    op = _transform()
    hook = _hook()
    hook.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx(try_number=2))
    assert hook.transform_bucket.call_args.args[3].skip_existing is True


@pytest.mark.parametrize("state", ["stopped", "aborted"])
def test_etl_definition_restarts_a_stopped_etl_and_resumes(state: str) -> None:
    op = _transform(etl_definition={"kind": "code", "python_callable": shout})
    hook = _hook()
    hook.info.return_value = _info(state=state, cause="target t2 left" if state == "aborted" else "")
    hook.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx())
    hook.start.assert_called_once_with("my-etl")
    hook.init_code.assert_not_called()
    assert hook.transform_bucket.call_args.args[3].skip_existing is True


def test_etl_definition_initialises_a_missing_etl() -> None:
    op = _transform(etl_definition={"kind": "code", "python_callable": shout, "comm_type": "hpull://"})
    hook = _hook()
    hook.info.side_effect = EtlNotFoundError("etl job my-etl does not exist", etl_name="my-etl")
    hook.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx())
    assert hook.init_code.call_args.kwargs["comm_type"] == "hpull://"
    assert hook.init_code.call_args.kwargs["transform"] == "shout"


def test_membership_abort_fails_with_abort_error_and_logs_cause(capfd: pytest.CaptureFixture[str]) -> None:
    op = _transform()
    hook = _hook()
    err = AbortError("etl job aborted: target t2 left", cause="target t2 left", etl_name="my-etl")
    err.stats = _stats(objects=4)  # type: ignore[attr-defined]
    hook.transform_bucket.side_effect = err
    _with_hook(op, hook)
    with pytest.raises(AbortError) as info:
        op.execute(_ctx())
    assert info.value is err
    assert not isinstance(info.value, AisEtlTaskKilledError)
    assert "etl my-etl job aborted: target t2 left; 4 of 10 object(s) done" in capfd.readouterr().out


def test_validation_error_from_the_service_fails_without_retry() -> None:
    op = _transform()
    hook = _hook()
    hook.transform_bucket.side_effect = ValidationError("source and destination are the same bucket")
    _with_hook(op, hook)
    with pytest.raises(AirflowFailException, match="same bucket"):
        op.execute(_ctx())


def test_on_kill_then_execute_raises() -> None:
    op = _transform()
    hook = _hook()
    hook.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.on_kill()
    with pytest.raises(AisEtlTaskKilledError) as info:
        op.execute(_ctx())
    assert isinstance(info.value, AbortError)
    assert info.value.cause == "task killed"
    hook.transform_bucket.assert_not_called()


def test_on_kill_during_the_job_aborts_it_and_the_task_fails() -> None:
    op = _transform()
    hook = _hook()
    started = threading.Event()

    def run(*args: object, control: JobControl, **kwargs: object) -> dict:
        started.set()
        for _ in range(500):
            if control.cause is not None:
                err = AbortError(f"etl job aborted: {control.cause}", cause=control.cause, etl_name="my-etl")
                err.stats = _stats(objects=2)  # type: ignore[attr-defined]
                raise err
            threading.Event().wait(0.01)
        return _stats()

    hook.transform_bucket.side_effect = run
    _with_hook(op, hook)
    killer = threading.Thread(target=lambda: (started.wait(5), op.on_kill()))
    killer.start()
    with pytest.raises(AisEtlTaskKilledError) as info:
        op.execute(_ctx())
    killer.join()
    assert info.value.stats["objects"] == 2


def test_kill_after_the_job_finished_still_fails() -> None:
    op = _transform()
    hook = _hook()

    def run(*args: object, **kwargs: object) -> dict:
        op.on_kill()  # the signal arrives just as the job returns
        return _stats(objects=10)

    hook.transform_bucket.side_effect = run
    _with_hook(op, hook)
    with pytest.raises(AisEtlTaskKilledError):
        op.execute(_ctx())


# ---------------------------------------------------------------------- object transform
def test_object_transform_to_local_file(tmp_path: Path) -> None:
    target = tmp_path / "out" / "one.txt"
    op = AisEtlObjectTransformOperator(
        task_id="t", etl_name="my-etl", src="/s", obj="a.txt", local_file=str(target)
    )
    hook = _hook()
    hook.transform_object.return_value = b"RESULT"
    _with_hook(op, hook)
    summary = op.execute(_ctx())
    assert target.read_bytes() == b"RESULT"
    assert summary == {"object": "a.txt", "src": "/s", "local_file": str(target), "bytes_out": 6}
    assert [p.name for p in target.parent.iterdir()] == ["one.txt"]


def test_object_transform_to_bucket() -> None:
    op = AisEtlObjectTransformOperator(
        task_id="t", etl_name="my-etl", src="/s", obj="a.txt", dst="/d", dst_name="b.txt"
    )
    hook = _hook()
    hook.transform_object.return_value = {"object": "a.txt", "dst": "/d", "dst_name": "b.txt", "bytes_out": 3}
    _with_hook(op, hook)
    assert op.execute(_ctx())["dst_name"] == "b.txt"
    assert hook.transform_object.call_args.kwargs["dst_name"] == "b.txt"
