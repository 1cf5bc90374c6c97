"""The gateway's per-item path helpers agree with the library calls they stand in for, on any input."""

from __future__ import annotations

import string
from urllib.parse import quote, unquote_to_bytes, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ais_etl.cluster.directput import DirectPutGrant
from airflow_ais_etl.cluster.gatewaypaths import Refusal, decode_uname, query_of, split_uname

PATH_CHARS = st.sampled_from(
    [*"/?#%.:@[]= \t\r\n\x00\x01", *string.ascii_letters[:6], *"0123459F", "é", "€", "%23", "%2F", "%40"]
)
paths = st.lists(PATH_CHARS, max_size=24).map("".join)


def _refusal_or(fn: object, value: str) -> object:
    try:
        return fn(value)  # type: ignore[operator]
    except Refusal as err:
        return ("refused", err.status, err.text)
    except (UnicodeDecodeError, ValueError) as err:
        return ("error", type(err).__name__)


def _split_uname_by_segments(uname: str) -> tuple[str, str]:
    """The segment-by-segment rule the gateway used before (a loop per segment)."""
    parts = uname.split("/", 3)
    if len(parts) < 3 or not parts[0] or not parts[1].startswith("@") or "#" not in parts[1]:
        raise Refusal(400, f"invalid object uname {uname!r}: expecting <provider>/@#/<bucket>/<object>")
    bucket, obj = parts[2], (parts[3] if len(parts) == 4 else "")
    if not bucket or bucket in (".", "..") or "\x00" in bucket:
        raise Refusal(400, f"invalid bucket name in uname {uname!r}")
    if not obj:
        raise Refusal(400, f'object name is missing (bucket={bucket}, uname="{uname}")')
    if "\x00" in obj or obj.startswith("/") or any(seg in ("", ".", "..") for seg in obj.split("/")):
        raise Refusal(400, f"invalid object name {obj!r}: no empty, '.' or '..' segments, not absolute")
    return bucket, obj


@settings(max_examples=2000, deadline=None)
@given(st.lists(st.sampled_from(["/", ".", "a", "\x00", "ab", ".."]), max_size=10))
def test_split_uname_refuses_exactly_the_segments_it_always_refused(pieces: list[str]) -> None:
    uname = "ais/@#/bucket/" + "".join(pieces)
    assert _refusal_or(split_uname, uname) == _refusal_or(_split_uname_by_segments, uname)


@pytest.mark.parametrize(
    "obj", ["a", "a/b", "a/./b", "a/../b", "a//b", "/a", "a/", ".", "..", "...", "a/.b", "a/..b"]
)
def test_split_uname_on_named_cases(obj: str) -> None:
    uname = f"ais/@#/bucket/{obj}"
    assert _refusal_or(split_uname, uname) == _refusal_or(_split_uname_by_segments, uname)


@settings(max_examples=2000, deadline=None)
@given(paths)
def test_decode_uname_is_unquote_to_bytes_then_utf8(rest: str) -> None:
    assert _refusal_or(decode_uname, rest) == _refusal_or(lambda r: unquote_to_bytes(r).decode("utf-8"), rest)


@settings(max_examples=2000, deadline=None)
@given(paths)
def test_query_of_is_urlsplits_query(path: str) -> None:
    assert _refusal_or(query_of, path) == _refusal_or(lambda p: urlsplit(p).query, path)
    assert _refusal_or(query_of, "/" + path) == _refusal_or(lambda p: urlsplit(p).query, "/" + path)


class _Token:
    def current(self) -> str:
        return "tok"

    def revoke(self, gateways: object) -> None:
        raise AssertionError("not revoked here")


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(list("ab/#@%?é $&+:=.-_~日")), min_size=1, max_size=20).map("".join))
def test_a_direct_put_url_escapes_the_whole_uname_and_the_gateway_reads_it_back(name: str) -> None:
    grant = DirectPutGrant("dst-b", lambda target: f"http://gw-{target}:1", _Token())
    url = grant.url_for("t1", name)
    head, _, rest = url.partition("?")
    assert rest == "uuid=tok"
    assert head == "http://gw-t1:1/" + quote(f"ais/@#/dst-b/{name}", safe="")
    assert decode_uname(head.rsplit("/", 1)[1]) == f"ais/@#/dst-b/{name}"
