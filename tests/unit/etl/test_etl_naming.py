"""Destination naming (§6.4), range templates (§6.3), prefixes, object names and escaping (§4, §11)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_ais_etl.etl.errors import ValidationError
from airflow_ais_etl.etl.naming import (
    MAX_TEMPLATE_NAMES,
    callback_path,
    dest_name,
    expand_template,
    fqn_path,
    hpush_path,
    parse_ext,
    path_escape,
    uname,
    validate_object_name,
    validate_prefix,
)

EXT = {"jpg": "txt", "in2": ".out2"}


@pytest.mark.parametrize(
    ("src", "ext", "dst"),
    [
        ("a/b/img.jpg", EXT, "etl-a/b/img.txt"),
        ("x.in2", EXT, "etl-x.out2"),
        ("photo.JPG", EXT, "etl-photo.JPG"),
        ("noext", EXT, "etl-noext"),
        ("dir.v1/file", EXT, "etl-dir.v1/file"),
        ("a.tar.gz", {"gz": "zst"}, "etl-a.tar.zst"),
        ("img.jpg", None, "etl-img.jpg"),
        ("img.jpg", {".jpg": "png"}, "etl-img.jpg"),
        ("img.jpg", {"jpg": "..png"}, "etl-img.png"),
        ("img.", {"": "x"}, "etl-img.x"),
        ("ünï.jpg", EXT, "etl-ünï.txt"),
    ],
)
def test_dest_name(src: str, ext: dict[str, str] | None, dst: str) -> None:
    assert dest_name(src, ext, "etl-") == dst


def test_dest_name_without_prepend() -> None:
    assert dest_name("a.jpg", EXT, "") == "a.txt"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('{"jpg": "txt", "in2": ".out2"}', EXT),
        ("{jpg:txt, in2:.out2}", EXT),
        ("{ jpg : txt }", {"jpg": "txt"}),
        ("{'jpg': 'txt'}", {"jpg": "txt"}),
        ("jpg:txt,in2:out2", {"jpg": "txt", "in2": "out2"}),
        ("{}", {}),
    ],
)
def test_parse_ext(text: str, parsed: dict[str, str]) -> None:
    assert parse_ext(text) == parsed


@pytest.mark.parametrize("text", ["", "  ", "{jpg}", "{jpg:}", "{:txt}", "{jpg:txt", '["jpg"]', '{"jpg": 1}'])
def test_parse_ext_errors(text: str) -> None:
    with pytest.raises(ValidationError, match="jpg:txt"):
        parse_ext(text)


# -- templates -------------------------------------------------------------------------------------------


def test_bash_vector() -> None:
    names = expand_template("obj-{000..100}.tar")
    assert names is not None
    assert len(names) == 101
    assert (names[0], names[1], names[-1]) == ("obj-000.tar", "obj-001.tar", "obj-100.tar")


def test_bash_without_padding() -> None:
    assert expand_template("x-{0..10}") == [f"x-{i}" for i in range(11)]


def test_padding_is_the_min_width() -> None:
    assert expand_template("x-{1..0010}") == [f"x-{i}" for i in range(1, 11)]
    assert expand_template("x-{08..10}") == ["x-08", "x-09", "x-10"]


def test_several_ranges_last_varies_fastest() -> None:
    names = expand_template("a-{00..10..2}-b-{1..3}.tar")
    assert names is not None
    assert len(names) == 18
    assert names[:4] == ["a-00-b-1.tar", "a-00-b-2.tar", "a-00-b-3.tar", "a-02-b-1.tar"]
    assert names[-1] == "a-10-b-3.tar"


def test_step_that_does_not_land_on_end() -> None:
    assert expand_template("{1..10..4}") == ["1", "5", "9"]


def test_at_form() -> None:
    names = expand_template("shard-@099.tar")
    assert names is not None
    assert len(names) == 100
    assert (names[0], names[-1]) == ("shard-000.tar", "shard-099.tar")
    assert expand_template("user@host/x-@2") == ["user@host/x-0", "user@host/x-1", "user@host/x-2"]


@pytest.mark.parametrize("prefix", ["", "dir/sub/", "file{x}", "a..b", "user@host/", "50%/x", "a}b"])
def test_no_range_means_prefix(prefix: str) -> None:
    assert expand_template(prefix) is None


@pytest.mark.parametrize(
    ("template", "why"),
    [
        ("x-{10..1}", r"start \(10\) > end \(1\)"),
        ("x-{1..10..0}", "step must be positive"),
        ("x-{1..10..-2}", "step must be positive"),
        ("x-{-1..5}", "negative"),
        ("x-{1..}", "malformed range"),
        ("x-{a..b}", "malformed range"),
        ("x-{1..3", "unmatched '{'"),
        ("x-}1..3{", "unmatched '}'"),
        ("x-{1..3}}", "unmatched '}'"),
        ("x-{{1..3}}", "malformed range"),
    ],
)
def test_bash_errors(template: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why) as info:
        expand_template(template)
    assert "expecting e.g. 'prefix-{0001..0010..1}-suffix'" in str(info.value)


def test_fmt_template_is_refused_with_a_hint() -> None:
    with pytest.raises(ValidationError, match="unbounded"):
        expand_template("shard-%04d.tar")


def test_expansion_cap() -> None:
    with pytest.raises(ValidationError, match=f"more than the limit of {MAX_TEMPLATE_NAMES}"):
        expand_template("{0..9999}-{0..9999}")
    with pytest.raises(ValidationError, match="more than the limit"):
        expand_template("x-@99999999")


# -- prefixes and object names -------------------------------------------------------------------------


@pytest.mark.parametrize(("prefix", "out"), [("dir/*", "dir/"), ("a", "a"), ("", ""), ("**", "*")])
def test_validate_prefix(prefix: str, out: str) -> None:
    assert validate_prefix(prefix) == out


@pytest.mark.parametrize("prefix", ["../x", "a/../b", "~/x", "a~/"])
def test_validate_prefix_errors(prefix: str) -> None:
    with pytest.raises(ValidationError, match=r"^bad list-range request: invalid prefix"):
        validate_prefix(prefix)


@pytest.mark.parametrize("name", ["a", "dir/a b.jpg", "x%y#z?w", "..a/b..", "ünï/ok", ".hidden", "a/.b"])
def test_good_object_names(name: str) -> None:
    assert validate_object_name(name) == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a\x00b", "NUL"),
        ("/etc/passwd", "absolute"),
        ("a//b", "empty path segment"),
        ("a/", "empty path segment"),
        ("../x", '".." segment'),
        ("a/../../x", '".." segment'),
        ("a/./b", '"." segment'),
        ("..", '".." segment'),
    ],
)
def test_bad_object_names(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        validate_object_name(name)


# -- escaping --------------------------------------------------------------------------------------------


def test_path_escape_like_go() -> None:
    assert path_escape("ais/@#/src/a b/c.jpg") == "ais%2F@%23%2Fsrc%2Fa%20b%2Fc.jpg"
    assert path_escape("$&+:=@-_.~") == "$&+:=@-_.~"
    assert path_escape(";,?!*'()%") == "%3B%2C%3F%21%2A%27%28%29%25"
    assert path_escape("é") == "%C3%A9"


_NAME_CHARS = st.sampled_from(list("ab/#@%?é $&+:=.-_~") + ["日", "\x7f"])


@settings(max_examples=2000, deadline=None)
@given(st.text(_NAME_CHARS, max_size=24), st.text(_NAME_CHARS, max_size=12))
def test_path_escape_is_quote_with_go_s_safe_set(directory: str, name: str) -> None:
    """Escaping a directory once and the rest after it gives what ``quote`` gives for the whole."""
    for text in (name, f"{directory}/{name}", f"ais/@#/{directory}/{name}", f"{directory}/{name}"):
        assert path_escape(text) == quote(text, safe="$&+:=@")  # (the last with its directory cached)


def test_callback_path_vector() -> None:
    assert uname("ais", "src", "dir/a b.jpg") == "ais/@#/src/dir/a b.jpg"
    assert callback_path(uname("ais", "src", "dir/a b.jpg")) == "/ais%2F@%23%2Fsrc%2Fdir%2Fa%20b.jpg"


@pytest.mark.parametrize(
    ("bucket", "obj", "path"),
    [
        ("src", "dir/a b.jpg", "/src/dir/a%20b.jpg"),
        ("src", "100%/x#1?y=2", "/src/100%25/x%231%3Fy%3D2"),
        ("src", "ünï.txt", "/src/%C3%BCn%C3%AF.txt"),
        ("my bucket", "a", "/my%20bucket/a"),
        ("b", "a/b/c", "/b/a/b/c"),
    ],
)
def test_hpush_path(bucket: str, obj: str, path: str) -> None:
    assert hpush_path(bucket, obj) == path


def test_fqn_path() -> None:
    assert fqn_path("/ais/mp1/@ais/src/%ob/img.jpg") == "/%2Fais%2Fmp1%2F@ais%2Fsrc%2F%25ob%2Fimg.jpg"
