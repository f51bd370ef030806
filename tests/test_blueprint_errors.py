"""Broken blueprints: each gives file:line:column and a reason, exit code 2, and no request
reaches the portal."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from b24kit.sandbox import Sandbox
from tests.cli import ROOT, run_cli
from tests.servers import served

GOOD_PIPELINE = """\
    - code: sales
      name: Продажи
      stages:
        - {code: NEW, name: Новая}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
"""
HEAD = "version: 1\ndeal:\n  pipelines:\n" + GOOD_PIPELINE


def with_fields(fields: str) -> str:
    return HEAD + "  fields:\n" + fields


def with_link(link: str) -> str:
    return (
        HEAD + "    - code: logistics\n      name: Логистика\n      stages:\n"
        "        - {code: NEW, name: Новая}\n        - {code: WON, name: Ок, semantics: success}\n"
        "        - {code: LOSE, name: Нет, semantics: failure}\n"
        "  fields:\n    - {code: PARENT_DEAL, type: crm, links: [deal], label: Родитель}\n"
        "    - {code: NOTE, type: string, label: Заметка}\n"
        "links:\n" + link
    )


LINK = (
    "  - name: estimate\n    parent: {pipeline: sales, stage: NEW}\n"
    "    child: {pipeline: logistics, stage: NEW}\n    child_field: PARENT_DEAL\n"
)

# (name, files {name: text}, expected line, reason fragment)
CASES: list[tuple[str, dict[str, str], int, str]] = [
    ("bad_yaml", {"b.yaml": "version: 1\ndeal: [\n"}, 3, "not valid YAML"),
    ("empty_file", {"b.yaml": ""}, 1, "the file is empty"),
    ("duplicate_yaml_key", {"b.yaml": "version: 1\nversion: 1\n"}, 2, "duplicate key"),
    ("unknown_top_key", {"b.yaml": HEAD + "pipelines: []\n"}, 10, "unknown key 'pipelines'"),
    (
        "unknown_stage_key",
        {
            "b.yaml": HEAD.replace(
                "{code: NEW, name: Новая}", "{code: NEW, name: Новая, colour: red}"
            )
        },
        7,
        "unknown key 'colour'",
    ),
    (
        "wrong_type",
        {
            "b.yaml": HEAD.replace(
                "      name: Продажи\n", "      name: Продажи\n      sort: many\n"
            )
        },
        6,
        "valid integer",
    ),
    (
        "missing_name",
        {"b.yaml": HEAD.replace("      name: Продажи\n", "")},
        4,
        "'name' is required",
    ),
    ("bad_version", {"b.yaml": HEAD.replace("version: 1", "version: 2")}, 1, "version"),
    (
        "no_stages",
        {"b.yaml": "version: 1\ndeal:\n  pipelines:\n    - {code: a, name: A, stages: []}\n"},
        4,
        "at least 1 item",
    ),
    (
        "bad_colour",
        {
            "b.yaml": HEAD.replace(
                "{code: NEW, name: Новая}", "{code: NEW, name: Новая, color: blue}"
            )
        },
        7,
        "must be #RRGGBB",
    ),
    (
        "lowercase_stage_code",
        {"b.yaml": HEAD.replace("{code: NEW,", "{code: new,")},
        7,
        "should match pattern",
    ),
    (
        "cyrillic_stage_code",
        {"b.yaml": HEAD.replace("{code: NEW,", "{code: НОВАЯ,")},
        7,
        "should match pattern",
    ),
    (
        "duplicate_stage",
        {"b.yaml": HEAD.replace("{code: WON, name: Успех", "{code: NEW, name: Успех")},
        8,
        "stage code 'NEW' is used twice",
    ),
    (
        "two_success",
        {"b.yaml": HEAD.replace("semantics: failure", "semantics: success")},
        6,
        "exactly one success stage",
    ),
    (
        "no_failure",
        {
            "b.yaml": HEAD.replace(
                "{code: LOSE, name: Провал, semantics: failure}", "{code: LOSE, name: Провал}"
            )
        },
        6,
        "failure stage",
    ),
    (
        "failure_before_success",
        {
            "b.yaml": HEAD.replace(
                "{code: WON, name: Успех, semantics: success}",
                "{code: WON, name: Успех, semantics: success, sort: 90}",
            )
        },
        8,
        "comes after a failure stage",
    ),
    (
        "duplicate_pipeline_code",
        {"b.yaml": HEAD + GOOD_PIPELINE.replace("Продажи", "Другие")},
        10,
        "pipeline code 'sales' is used twice",
    ),
    (
        "duplicate_pipeline_name",
        {"b.yaml": HEAD + GOOD_PIPELINE.replace("code: sales", "code: other")},
        11,
        "deal pipelines are matched by name",
    ),
    (
        "too_long_field_code",
        {"b.yaml": with_fields("    - {code: " + "X" * 36 + ", type: string, label: L}\n")},
        11,
        "at most 35 characters",
    ),
    (
        "duplicate_field",
        {
            "b.yaml": with_fields(
                "    - {code: A, type: string, label: L}\n    - {code: A, type: string, label: M}\n"
            )
        },
        12,
        "field code 'A' is used twice",
    ),
    (
        "enum_without_values",
        {"b.yaml": with_fields("    - {code: R, type: enumeration, label: L}\n")},
        11,
        "needs values",
    ),
    (
        "crm_without_links",
        {"b.yaml": with_fields("    - {code: P, type: crm, label: L}\n")},
        11,
        "must say which entities it links",
    ),
    (
        "unknown_field_type",
        {"b.yaml": with_fields("    - {code: P, type: hologram, label: L}\n")},
        11,
        "Input should be",
    ),
    (
        "dangling_link_pipeline",
        {"b.yaml": with_link(LINK.replace("pipeline: logistics", "pipeline: nowhere"))},
        22,
        "no pipeline 'nowhere'",
    ),
    (
        "dangling_link_stage",
        {
            "b.yaml": with_link(
                LINK.replace("{pipeline: sales, stage: NEW}", "{pipeline: sales, stage: ESTIMATE}")
            )
        },
        21,
        "has no stage 'ESTIMATE'",
    ),
    (
        "dangling_move",
        {"b.yaml": with_link(LINK + "    moves: [{child_stage: APPROVAL, parent_stage: WON}]\n")},
        24,
        "has no stage 'APPROVAL'",
    ),
    (
        "link_field_wrong_type",
        {"b.yaml": with_link(LINK.replace("child_field: PARENT_DEAL", "child_field: NOTE"))},
        23,
        "must be of type crm",
    ),
    (
        "link_parent_pipelines_unknown",
        {"b.yaml": with_link(LINK.replace("{pipeline: sales,", "{pipelines: [sales, nowhere],"))},
        21,
        "no pipeline 'nowhere'",
    ),
    (
        "link_parent_pipeline_twice",
        {"b.yaml": with_link(LINK.replace("{pipeline: sales,", "{pipelines: [sales, sales],"))},
        21,
        "parent pipeline 'sales' twice",
    ),
    (
        "link_parent_both_ways",
        {
            "b.yaml": with_link(
                LINK.replace("{pipeline: sales,", "{pipeline: sales, pipelines: [sales],")
            )
        },
        21,
        "name the parent pipeline once",
    ),
    (
        "link_parent_is_its_child",
        {"b.yaml": with_link(LINK.replace("{pipeline: sales,", "{pipelines: [sales, logistics],"))},
        22,
        "joins a pipeline to itself",
    ),
    (
        "link_quote_field_type",
        {
            "b.yaml": with_link(
                LINK + "    moves: [{child_stage: WON, parent_stage: WON, record: {price: NOTE}}]\n"
            )
        },
        24,
        "'NOTE' must be of type money or double",
    ),
    (
        "links_share_a_mirror_field",
        {
            "b.yaml": with_link(
                LINK
                + "    mirror_field: NOTE\n"
                + LINK.replace("name: estimate", "name: survey").replace(
                    "{pipeline: sales,", "{pipelines: [sales],"
                )
                + "    mirror_field: NOTE\n"
            )
        },
        29,
        "mirror_field 'NOTE' is also the mirror_field of link 'estimate' on pipeline 'sales'",
    ),
    (
        "circular_include",
        {"b.yaml": "version: 1\ninclude: [a.yaml]\n", "a.yaml": "include: [b.yaml]\n"},
        1,
        "circular include",
    ),
    ("missing_include", {"b.yaml": "version: 1\ninclude: [nope.yaml]\n"}, 2, "does not exist"),
    (
        "unknown_variable",
        {"b.yaml": HEAD.replace("name: Продажи", "name: ${brand} Продажи")},
        5,
        "unknown variable ${brand}",
    ),
    (
        "error_in_included_file",
        {
            "b.yaml": "version: 1\ninclude: [f.yaml]\n",
            "f.yaml": "deal:\n  fields:\n    - {code: X, type: crm, label: L}\n",
        },
        3,
        "must say which entities it links",
    ),
]


@pytest.fixture(scope="module")
def portal() -> Iterator[tuple[Sandbox, str]]:
    """A sandbox over loopback HTTP (the process's shared server) and its base URL."""
    box = Sandbox(limits="off")
    with served(box) as base:
        yield box, base


@pytest.mark.parametrize(("name", "files", "line", "reason"), CASES, ids=[c[0] for c in CASES])
def test_broken_blueprint(
    tmp_path: Path,
    portal: tuple[Sandbox, str],
    name: str,
    files: dict[str, str],
    line: int,
    reason: str,
) -> None:
    box, base = portal
    for file_name, text in files.items():
        (tmp_path / file_name).write_text(text, encoding="utf-8")
    before = box.requests
    result = run_cli(
        "plan",
        "b.yaml",
        "--portal",
        box.webhook_url(base),
        cwd=tmp_path,
        env={"XDG_CONFIG_HOME": str(tmp_path)},
    )
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr, result.stderr
    error_file = "a.yaml" if name == "circular_include" and "a.yaml:" in result.stderr else None
    located = [ln for ln in result.stderr.splitlines() if reason in ln]
    assert located, result.stderr
    first = located[0]
    file_part, line_part = first.split(":")[0], int(first.split(":")[1])
    assert file_part.endswith(
        (error_file or ("f.yaml" if name == "error_in_included_file" else "b.yaml"), "a.yaml")
    ), first
    assert line_part == line, f"expected line {line}: {first}"
    assert box.requests == before, "nothing reached the portal"


def test_all_errors_at_once(tmp_path: Path) -> None:
    text = (
        HEAD.replace("{code: NEW, name: Новая}", "{code: NEW, name: Новая, color: blue}")
        + "  fields:\n    - {code: R, type: enumeration, label: L}\n    - {code: R, type: crm, label: L}\n"
    )
    (tmp_path / "b.yaml").write_text(text, encoding="utf-8")
    result = run_cli("validate", "b.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "must be #RRGGBB" in result.stderr, "the schema error is reported"
    assert "3 errors" in result.stderr or "1 error" in result.stderr


def test_valid_blueprints_validate() -> None:
    for name in ("company.yaml", "example.yaml"):
        result = run_cli("validate", f"blueprints/{name}", cwd=ROOT)
        assert result.returncode == 0, result.stderr
