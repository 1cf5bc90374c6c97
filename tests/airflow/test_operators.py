from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_ais_etl.dataplane.engine import JobControl, OfflineOptions
from airflow_ais_etl.etl.definition import CodeSource, EtlDefinition, SpecSource
from airflow_ais_etl.etl.errors import AbortError, EtlExistsError, EtlNotFoundError, ValidationError
from airflow_ais_etl.etl.origin import Origin
from airflow_ais_etl.etl.state import EtlState
from airflow_ais_etl.exceptions import AisEtlTaskKilledError
from airflow_ais_etl.hooks.ais_etl import AisEtlHook
from airflow_ais_etl.operators.base import task_origin
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator, AisEtlStopOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator
from airflow_ais_etl.service import AisEtl, EtlInfo

if TYPE_CHECKING:
    from pathlib import Path


def shout(data: bytes) -> bytes:
    import zlib

    return zlib.compress(data.upper())


def _info(name: str = "my-etl", state: EtlState = EtlState.RUNNING, cause: str = "") -> EtlInfo:
    pods = 2 if state == EtlState.RUNNING else 0
    return EtlInfo(name, "code", "hpush://", "", "python3.11v2", state, pods, cause)


def _hook() -> mock.MagicMock:
    """A hook whose ``api`` is a mock of the ETL service (every call checked against its signature)."""
    hook = mock.MagicMock(spec=AisEtlHook)
    hook.etl_url.return_value = "file:///tmp/etl"
    hook.api = mock.create_autospec(AisEtl, instance=True)
    hook.api.init.return_value = _info()
    hook.api.info.return_value = _info()
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
    assert set(AisEtlStopOperator.template_fields) == {"etl_name", "force", "ais_etl_conn_id"}
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
            ValidationError,
        ),
        (
            lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl", code="x", env=["A=1"]),
            ValidationError,
        ),
        (
            lambda: AisEtlInitCodeOperator(task_id="t", etl_name="my-etl", code="x", dependencies=[1, 2]),
            ValidationError,
        ),
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
            ValidationError,
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
    hook.api.init.assert_not_called()
    hook.api.transform_bucket.assert_not_called()


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
    name, definition = hook.api.init.call_args.args
    assert name == "my-etl"
    source = definition.source
    assert isinstance(source, CodeSource)
    assert source.code.startswith("def shout(")
    assert source.transform == "shout"
    assert source.dependencies == "zstandard\nnumpy==2.0\n"
    assert source.chunk_size == 0
    assert definition.timeout == 120.0
    assert definition.env == {"N": "3"}
    pushed = {c.kwargs["key"]: c.kwargs["value"] for c in ctx["ti"].xcom_push.call_args_list}
    assert pushed["ais_etl_task"] == {
        "etl": "my-etl",
        "conn_id": "ais_etl_default",
        "dashboard": "file:///tmp/etl",
    }


def test_init_spec_builds_a_spec_definition() -> None:
    op = AisEtlInitSpecOperator(
        task_id="t", etl_name="my-etl", spec={"kind": "Pod"}, comm_type="io", replace="True"
    )
    hook = _hook()
    _with_hook(op, hook)
    op.execute(_ctx())
    name, definition = hook.api.init.call_args.args
    assert name == "my-etl"
    assert definition == EtlDefinition(SpecSource("kind: Pod\n"), comm_type="io://", replace=True)


def test_init_passes_the_task_as_origin() -> None:
    op = AisEtlInitSpecOperator(task_id="t", etl_name="my-etl", spec={"kind": "Pod"})
    hook = _hook()
    _with_hook(op, hook)
    ti = mock.MagicMock(dag_id="ti-dag", task_id="init", run_id="ti-run", try_number=2, map_index=-1)
    op.execute({"ti": ti, "dag": mock.MagicMock(dag_id="my_dag"), "run_id": "manual__1"})  # type: ignore[arg-type]
    assert hook.api.init.call_args.kwargs["origin"] == Origin("my_dag", "init", "manual__1", "2", "-1")


def test_origin_skips_what_the_context_lacks() -> None:
    assert task_origin({"ti": mock.MagicMock(spec=[])}) == Origin()  # type: ignore[typeddict-item]


def test_init_conflict_fails_without_retry() -> None:
    op = AisEtlInitSpecOperator(task_id="t", etl_name="my-etl", spec={"kind": "Pod"})
    hook = _hook()
    hook.api.init.side_effect = EtlExistsError(
        "etl already exists with a different definition", etl_name="my-etl"
    )
    _with_hook(op, hook)
    with pytest.raises(AirflowFailException, match="different definition"):
        op.execute(_ctx())


def test_stop_is_idempotent() -> None:
    op = AisEtlStopOperator(task_id="t", etl_name="my-etl")
    hook = _hook()
    _with_hook(op, hook)
    hook.api.stop.return_value = True
    assert op.execute(_ctx()) == {"stopped": ["my-etl"]}
    hook.api.stop.return_value = False
    assert op.execute(_ctx()) == {"stopped": []}
    hook.api.stop.side_effect = EtlNotFoundError("etl job my-etl does not exist", etl_name="my-etl")
    assert op.execute(_ctx()) == {"stopped": []}
    every = AisEtlStopOperator(task_id="all", all_etls=True)
    _with_hook(every, hook)
    hook.api.stop_all.return_value = ["a-etl", "b-etl"]
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
    hook.api.transform_bucket.return_value = _stats(objects=10)
    _with_hook(op, hook)
    assert op.execute(_ctx()) == _stats(objects=10)
    (name, src, dst, options), kwargs = hook.api.transform_bucket.call_args
    assert (name, src, dst) == ("my-etl", "/s", "/d")
    # the engine reports every second (the ETL view's feed); the task log gets a line every 2 s
    assert options == OfflineOptions(
        prefix="a/", ext={"jpg": "txt"}, num_workers=3, progress_interval=1.0, request_timeout=5.0
    )
    assert kwargs["progress"].log_every == 2.0
    assert isinstance(kwargs["control"], JobControl)
    hook.api.start.assert_not_called()


def test_bucket_transform_hash_shard_is_rendered_and_validated() -> None:
    """Templates render ``shard``/``shards`` as text; both or neither; 0 <= shard < shards."""
    assert _transform(shard="1", shards="4").build_options().shard == (1, 4)
    assert _transform(shard=0, shards=1).build_options().shard == (0, 1)
    assert _transform().build_options().shard is None
    for kwargs, message in (
        ({"shard": 1}, "both shard and shards"),
        ({"shards": "3"}, "both shard and shards"),
        ({"shard": 3, "shards": 3}, "between 0 and 2"),
        ({"shard": -1, "shards": 3}, "shard must be >= 0"),
        ({"shard": 0, "shards": "many"}, "shards must be an integer"),
    ):
        with pytest.raises(ValidationError, match=message):
            _transform(**kwargs).build_options()


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
    hook.api.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx(try_number=2))
    assert hook.api.transform_bucket.call_args.args[3].skip_existing is True


@pytest.mark.parametrize("state", [EtlState.STOPPED, EtlState.ABORTED])
def test_etl_definition_restarts_a_stopped_etl_and_resumes(state: EtlState) -> None:
    op = _transform(etl_definition={"kind": "code", "python_callable": shout})
    hook = _hook()
    hook.api.info.return_value = _info(state=state, cause="target t2 left" if state == "aborted" else "")
    hook.api.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx())
    hook.api.start.assert_called_once_with("my-etl", origin=mock.ANY)
    hook.api.init.assert_not_called()
    assert hook.api.transform_bucket.call_args.args[3].skip_existing is True


def test_etl_definition_initialises_a_missing_etl() -> None:
    op = _transform(etl_definition={"kind": "code", "python_callable": shout, "comm_type": "hpull://"})
    hook = _hook()
    hook.api.info.side_effect = EtlNotFoundError("etl job my-etl does not exist", etl_name="my-etl")
    hook.api.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.execute(_ctx())
    name, definition = hook.api.init.call_args.args
    assert name == "my-etl"
    assert definition.comm_type == "hpull://"
    assert definition.source.transform == "shout"


def test_etl_definition_with_unknown_keys_fails_listing_the_allowed_ones() -> None:
    op = _transform(etl_definition={"kind": "code", "python_callable": shout, "comm": "hpull"})
    hook = _hook()
    _with_hook(op, hook)
    with pytest.raises(AirflowFailException, match=r"unknown argument\(s\) of a code ETL definition: comm"):
        op.execute(_ctx())
    hook.api.transform_bucket.assert_not_called()


def test_membership_abort_fails_with_abort_error_and_logs_cause() -> None:
    op = _transform()
    hook = _hook()
    err = AbortError("etl job aborted: target t2 left", cause="target t2 left", etl_name="my-etl")
    err.stats = _stats(objects=4)  # type: ignore[attr-defined]
    hook.api.transform_bucket.side_effect = err
    _with_hook(op, hook)
    with pytest.raises(AbortError) as info:
        op.execute(_ctx())
    assert not isinstance(info.value, AisEtlTaskKilledError)
    assert info.value.cause == "target t2 left"
    assert info.value.stats == _stats(objects=4)  # type: ignore[attr-defined]
    assert info.value.__suppress_context__  # the paragraph, not the engine's traceback
    message = str(info.value)
    assert "The offline job of ETL my-etl was aborted: target t2 left. Before the abort 4 of 10" in message
    assert "To resume, clear this task" in message  # no retries left (retries=0)
    assert "target t2's pod" in message
    assert message.count("was aborted") == 1


def test_validation_error_from_the_service_fails_without_retry() -> None:
    op = _transform()
    hook = _hook()
    hook.api.transform_bucket.side_effect = ValidationError("source and destination are the same bucket")
    _with_hook(op, hook)
    with pytest.raises(AirflowFailException, match="same bucket"):
        op.execute(_ctx())


def test_on_kill_then_execute_raises() -> None:
    op = _transform()
    hook = _hook()
    hook.api.transform_bucket.return_value = _stats()
    _with_hook(op, hook)
    op.on_kill()
    with pytest.raises(AisEtlTaskKilledError) as info:
        op.execute(_ctx())
    assert isinstance(info.value, AbortError)
    assert info.value.cause == "task killed"
    hook.api.transform_bucket.assert_not_called()


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

    hook.api.transform_bucket.side_effect = run
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

    hook.api.transform_bucket.side_effect = run
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
    hook.api.transform_object.return_value = b"RESULT"
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
    hook.api.transform_object.return_value = {
        "object": "a.txt",
        "dst": "/d",
        "dst_name": "b.txt",
        "bytes_out": 3,
    }
    _with_hook(op, hook)
    assert op.execute(_ctx())["dst_name"] == "b.txt"
    assert hook.api.transform_object.call_args.kwargs["dst_name"] == "b.txt"
