"""Keep docs/ exact: snippets equal the example DAGs' [START]/[END] blocks, links resolve, and every
parameter, CLI option and connection field the pages list exists in the code (and the reverse).
"""

from __future__ import annotations

import argparse
import ast
import importlib
import inspect
import re
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "example_dags"

_MARKER = re.compile(r"^[ \t]*# \[(START|END) ([A-Za-z0-9_]+)\][ \t]*$", re.M)
_SNIPPET = re.compile(r"^<!-- snippet: (\S+) (\S+) -->\n")
_PARAMS = re.compile(r"^<!-- params: (\S+) -->\n")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _markers() -> dict[tuple[str, str], str]:
    """Return ``(example file, snippet name) -> dedented text between its markers``."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        text = path.read_text()
        open_name: str | None = None
        start = 0
        for match in _MARKER.finditer(text):
            kind, name = match.groups()
            if kind == "START":
                assert open_name is None, f"{_rel(path)}: [START {name}] inside [START {open_name}]"
                assert (_rel(path), name) not in out, f"{_rel(path)}: snippet {name} marked twice"
                open_name, start = name, match.end() + 1
            else:
                assert open_name == name, f"{_rel(path)}: [END {name}] does not close [START {open_name}]"
                out[(_rel(path), name)] = textwrap.dedent(text[start : match.start()]).strip("\n")
                open_name = None
        assert open_name is None, f"{_rel(path)}: [START {open_name}] has no [END]"
    return out


def _following_block(lines: list[str], i: int) -> tuple[int, list[str]]:
    """Skip blank lines after line ``i``; return the index of the next line and the lines from there."""
    j = i + 1
    while j < len(lines) and not lines[j].strip():
        j += 1
    return j, lines[j:]


def _doc_snippets() -> list[tuple[str, str, str, str]]:
    """Return ``(page, example file, snippet name, code)`` for every snippet-marked python block."""
    out = []
    for page in _pages():
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            match = _SNIPPET.match(line + "\n")
            if not match:
                continue
            _, rest = _following_block(lines, i)
            assert rest[:1] == ["```python"], (
                f"{_rel(page)}:{i + 1}: a snippet marker must be followed by a ```python block"
            )
            end = rest.index("```", 1)
            out.append((_rel(page), match.group(1), match.group(2), "\n".join(rest[1:end])))
    return out


def _param_tables() -> list[tuple[str, str, list[dict[str, str]]]]:
    """Return ``(page, dotted class, rows)`` for every ``<!-- params: ... -->`` table."""
    out = []
    for page in _pages():
        lines = page.read_text().splitlines()
        for i, line in enumerate(lines):
            match = _PARAMS.match(line + "\n")
            if not match:
                continue
            _, rest = _following_block(lines, i)
            table = []
            for row in rest:
                if not row.startswith("|"):
                    break
                table.append([c.strip() for c in row.strip().strip("|").split("|")])
            header, body = table[0], table[2:]
            assert header[0] == "Parameter", f"{_rel(page)}:{i + 1}: a params table starts with 'Parameter'"
            for cells in body:
                assert len(cells) == len(header), f"{_rel(page)}: malformed row {cells}"
            out.append((_rel(page), match.group(1), [dict(zip(header, cells)) for cells in body]))
    return out


def _import(dotted: str) -> type:
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _signature_params(cls: type) -> tuple[dict[str, inspect.Parameter], set[str]]:
    """Return every keyword parameter along the MRO, and the names this project's classes define."""
    every: dict[str, inspect.Parameter] = {}
    own: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        for name, param in inspect.signature(init).parameters.items():
            if name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            every.setdefault(name, param)
            if klass.__module__.startswith("airflow_ais_etl."):
                own.add(name)
    return every, own


def _backticked_name(cell: str) -> str:
    match = re.fullmatch(r"`([A-Za-z_][A-Za-z0-9_]*)`", cell)
    assert match, f"parameter cell {cell!r} must be one `name`"
    return match.group(1)


def _slug(heading: str) -> str:
    """Return the anchor GitHub gives a heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    out = set()
    in_code = False
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            out.add(_slug(line.lstrip("#")))
    return out


# ---------------------------------------------------------------------- snippets


def test_every_start_has_an_end_and_snippets_exist() -> None:
    markers = _markers()
    assert markers, "no [START]/[END] markers in example_dags"
    for key, code in markers.items():
        assert code.strip(), f"snippet {key} is empty"


def test_doc_snippets_equal_the_example_dags() -> None:
    markers = _markers()
    snippets = _doc_snippets()
    assert snippets, "no snippet-marked python blocks in docs/"
    for page, source, name, code in snippets:
        assert (source, name) in markers, f"{page}: snippet {name} is not marked in {source}"
        assert code == markers[(source, name)], (
            f"{page}: the {name} block differs from {source}; copy the text between its markers again"
        )


def test_every_marked_snippet_is_used_by_a_page() -> None:
    used = {(source, name) for _page, source, name, _code in _doc_snippets()}
    unused = sorted(set(_markers()) - used)
    assert not unused, f"snippets no page embeds: {unused}"


# ---------------------------------------------------------------------- pages and links


def test_index_links_every_page_and_every_link_resolves() -> None:
    index = DOCS / "index.md"
    assert index.is_file()
    linked = set()
    for page in _pages():
        for target in _LINK.findall(page.read_text()):
            if re.match(r"[a-z]+://", target) or target.startswith("mailto:"):
                continue
            path_part, _, anchor = target.partition("#")
            dest = (page.parent / path_part).resolve() if path_part else page
            assert dest.is_file(), f"{_rel(page)}: link {target} points at a missing file"
            if anchor and dest.suffix == ".md":
                assert anchor in _anchors(dest), f"{_rel(page)}: link {target}: no such heading"
            if page == index:
                linked.add(dest)
    missing = [_rel(p) for p in _pages() if p != index and p not in linked]
    assert not missing, f"pages the index does not link: {missing}"


# ---------------------------------------------------------------------- parameters


def _documented_classes() -> list[str]:
    """Return every operator, sensor and trigger class the provider info's modules export."""
    from airflow.triggers.base import BaseTrigger

    from airflow_ais_etl.get_provider_info import get_provider_info
    from airflow_ais_etl.version_compat import BaseOperator

    info = get_provider_info()
    out = []
    for kind in ("operators", "sensors", "triggers"):
        for entry in info[kind]:
            for module_name in entry["python-modules"]:
                module = importlib.import_module(module_name)
                for name in getattr(module, "__all__", ()):
                    obj = getattr(module, name)
                    if (
                        inspect.isclass(obj)
                        and issubclass(obj, (BaseOperator, BaseTrigger))
                        and obj.__module__ == module_name
                    ):
                        out.append(f"{module_name}.{name}")
    return out


def test_every_operator_sensor_and_trigger_has_a_params_table() -> None:
    tables = {dotted for _page, dotted, _rows in _param_tables()}
    missing = sorted(set(_documented_classes()) - tables)
    assert not missing, f"classes without a <!-- params: ... --> table in docs/: {missing}"


@pytest.mark.parametrize("table", _param_tables(), ids=lambda t: t[1].rpartition(".")[2])
def test_params_table_matches_the_signature(table: tuple[str, str, list[dict[str, str]]]) -> None:
    page, dotted, rows = table
    cls = _import(dotted)
    every, own = _signature_params(cls)
    listed = [_backticked_name(row["Parameter"]) for row in rows]
    assert len(listed) == len(set(listed)), f"{page}: a parameter is listed twice"
    unknown = sorted(set(listed) - set(every))
    assert not unknown, f"{page}: {dotted} has no parameter(s) {unknown}"
    undocumented = sorted(own - set(listed))
    assert not undocumented, f"{page}: {dotted} parameter(s) missing from the table: {undocumented}"
    templated = set(getattr(cls, "template_fields", ()))
    for row, name in zip(rows, listed):
        param = every[name]
        if "Templated" in row:
            assert row["Templated"] == ("yes" if name in templated else "no"), (
                f"{page}: {name} is {'' if name in templated else 'not '}a template field"
            )
        default = row["Default"]
        if param.default is inspect.Parameter.empty:
            assert default == "required", f"{page}: {name} has no default, so it is required"
            continue
        assert default != "required", f"{page}: {name} has a default ({param.default!r})"
        literal = re.fullmatch(r"`([^`]*)`", default)
        if literal:
            try:
                value = ast.literal_eval(literal.group(1))
            except (ValueError, SyntaxError):
                continue  # prose in backticks, such as a config option
            wrong = f"{page}: {name} defaults to {param.default!r}, the page says {default}"
            assert value == param.default, wrong
            assert type(value) is type(param.default), wrong


# ---------------------------------------------------------------------- CLI


def _cli_commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _cli_commands(sub, (*path, name))
    return out


def test_cli_page_lists_every_command_and_option() -> None:
    from airflow_ais_etl.cli import build_parser

    text = (DOCS / "cli.md").read_text()
    options: set[str] = set()
    for path, parser in _cli_commands(build_parser()):
        leaf = not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if path and leaf:
            command = " ".join(path)
            assert f"`{command}" in text or f"`ais-etl {command}" in text, f"cli.md: no `{command}`"
        for action in parser._actions:
            options.update(o for o in action.option_strings if o.startswith("--") and o != "--help")
            if not action.option_strings and not isinstance(action, argparse._SubParsersAction):
                assert action.dest.upper() in text, f"cli.md: no {action.dest.upper()} ({' '.join(path)})"
    for option in sorted(options):
        assert f"`{option}" in text, f"cli.md does not document {option}"
    mentioned = set(re.findall(r"`(--[a-z][a-z0-9-]*)", text))
    assert not mentioned - options, f"cli.md mentions options ais-etl does not have: {mentioned - options}"


# ---------------------------------------------------------------------- connection


def test_connection_page_lists_every_field() -> None:
    from airflow_ais_etl.hooks.settings import CONN_FIELDS, AisEtlSettings

    text = (DOCS / "connection.md").read_text()
    section = text.split("## Fields", 1)[1].split("\n## ", 1)[0]
    rows = [
        [c.strip() for c in r.strip().strip("|").split("|")]
        for r in section.splitlines()
        if r.startswith("| `")
    ]
    listed = [_backticked_name(cells[0]) for cells in rows]
    assert len(listed) == len(set(listed)), "connection.md lists a field twice"
    assert set(listed) == set(CONN_FIELDS), "connection.md must list exactly the connection's fields"
    defaults = AisEtlSettings()
    sections = {"Local backend": "local", "Kubernetes backend": "kubernetes"}
    for name, (_field, backend, default, _meaning) in zip(listed, rows):
        section_name = CONN_FIELDS[name]["schema"].get("section")
        assert backend == sections.get(section_name, "all"), (
            f"connection.md: {name} belongs to {section_name}"
        )
        literal = re.fullmatch(r"`([^`]*)`", default)
        if literal:
            value = ast.literal_eval(literal.group(1).replace("true", "True").replace("false", "False"))
            assert value == getattr(defaults, name), (
                f"connection.md: {name} defaults to {getattr(defaults, name)!r}"
            )


# ---------------------------------------------------------------------- provider info


def test_documentation_url_points_at_these_docs() -> None:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        pytest.skip("tomllib needs Python 3.11")
    from airflow_ais_etl.get_provider_info import get_provider_info

    url = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Documentation"]
    assert "airflow.apache.org" not in url
    assert get_provider_info()["documentation-url"] == url
    assert url == "docs/index.md" or url.endswith("/docs/index.md")
    assert (ROOT / "docs" / "index.md").is_file()
