from __future__ import annotations

from unittest import mock

from airflow_ais_etl.links.etl import AisEtlLink
from airflow_ais_etl.operators.etl import AisEtlInitCodeOperator, AisEtlInitSpecOperator
from airflow_ais_etl.operators.transform import AisEtlBucketTransformOperator, AisEtlObjectTransformOperator

XCOM_GET = "airflow.sdk.execution_time.xcom.XCom.get_value"


def test_persist_pushes_under_the_link_key() -> None:
    ti = mock.MagicMock()
    AisEtlLink.persist({"ti": ti}, "file:///tmp/x")
    ti.xcom_push.assert_called_once_with(key="ais_etl_link", value="file:///tmp/x")
    assert AisEtlLink().xcom_key == "ais_etl_link"


def test_get_link_reads_xcom() -> None:
    key = object()
    with mock.patch(XCOM_GET, return_value="https://g/d?etl=a") as get:
        assert AisEtlLink().get_link(mock.MagicMock(), ti_key=key) == "https://g/d?etl=a"  # type: ignore[arg-type]
    get.assert_called_once_with(key="ais_etl_link", ti_key=key)


def test_get_link_never_raises() -> None:
    with mock.patch(XCOM_GET, side_effect=RuntimeError("no comms")):
        assert AisEtlLink().get_link(mock.MagicMock(), ti_key=object()) == ""  # type: ignore[arg-type]
    with mock.patch(XCOM_GET, return_value=None):
        assert AisEtlLink().get_link(mock.MagicMock(), ti_key=object()) == ""  # type: ignore[arg-type]


def test_link_is_on_init_and_transform_operators() -> None:
    for cls in (
        AisEtlInitCodeOperator,
        AisEtlInitSpecOperator,
        AisEtlBucketTransformOperator,
        AisEtlObjectTransformOperator,
    ):
        assert any(isinstance(link, AisEtlLink) for link in cls.operator_extra_links), cls
