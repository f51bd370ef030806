"""Blueprints the portal would take differently from what they say (issue 16, item 4):
each is refused with file:line before anything reaches a portal."""

from __future__ import annotations

from pathlib import Path

import pytest

from b24kit.blueprint.loader import BlueprintError, load_blueprint

STAGES = """\
        - {code: NEW, name: Новая}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
"""


def blueprint(stages: str = STAGES, extra: str = "", pipeline: str = "") -> str:
    return (
        "version: 1\nname: t\ndeal:\n  pipelines:\n    - code: sales\n      name: Продажи\n"
        + pipeline
        + "      stages:\n"
        + stages
        + extra
    )


LINKED = """\
    - code: logistics
      name: Логистика
      stages:
        - {code: NEW, name: Новая}
        - {code: WON, name: Ок, semantics: success}
        - {code: LOSE, name: Нет, semantics: failure}
  fields:
    - {code: LINK_DEAL, type: crm, links: [deal], label: Связь}
links:
  - name: estimate
    parent: {pipeline: sales, stage: NEW}
    child: {pipeline: logistics, stage: NEW}
    parent_field: LINK_DEAL
    child_field: LINK_DEAL
"""

CASES = [
    (
        "codes_one_after_the_cut",
        blueprint(
            "        - {code: APPROVAL_BY_MANAGER_A, name: A}\n"
            "        - {code: APPROVAL_BY_MANAGER_B, name: B}\n" + STAGES
        ),
        "become one stage",
    ),
    (
        "sort_out_of_range",
        blueprint(
            STAGES.replace("{code: NEW, name: Новая}", "{code: NEW, name: Новая, sort: 1e23}")
        ),
        "sort",
    ),
    (
        "colour_with_newline",
        blueprint(
            STAGES.replace(
                "{code: NEW, name: Новая}", '{code: NEW, name: Новая, color: "#FF0000\\n"}'
            )
        ),
        "colour",
    ),
    (
        "ansi_in_name",
        blueprint(STAGES.replace("name: Новая", 'name: "Нов\\e[2Jая"')),
        "control character U+001B",
    ),
    (
        "bidi_in_name",
        blueprint(STAGES.replace("name: Новая", 'name: "Новая\\u202e"')),
        "control character U+202E",
    ),
    ("link_field_twice", blueprint(extra=LINKED), "also another of its fields"),
    (
        "sort_true",
        blueprint(
            STAGES.replace("{code: NEW, name: Новая}", "{code: NEW, name: Новая, sort: true}")
        ),
        "valid integer",
    ),
    ("pipeline_sort_quoted", blueprint(pipeline="      sort: '100'\n"), "valid integer"),
    ("default_yes_quoted", blueprint(pipeline="      default: 'yes'\n"), "valid boolean"),
    ("version_true", blueprint().replace("version: 1", "version: true"), "must be the number 1"),
    ("blank_name", blueprint(STAGES.replace("name: Новая", "name: '   '")), "is blank"),
    (
        "zero_width_in_name",
        blueprint(STAGES.replace("name: Новая", 'name: "Но\\u200bвая"')),
        "control character U+200B",
    ),
    (
        "line_separator_in_name",
        blueprint(STAGES.replace("name: Новая", 'name: "Но\\u2028вая"')),
        "control character U+2028",
    ),
    (
        "lone_surrogate",
        blueprint(STAGES.replace("name: Новая", 'name: "\\ud800"')),
        "lone surrogate U+D800",
    ),
    (
        "typo_of_a_required_key",
        blueprint(STAGES.replace("{code: NEW,", "{cod: NEW,")),
        "unknown key 'cod'; did you mean 'code'?",
    ),
    (
        "label_in_an_unknown_language",  # one error, not one per kind a label may be
        blueprint(extra="  fields:\n    - {code: NOTE, type: string, label: {fr: Note}}\n"),
        "deal.fields[0].label.fr: Input should be 'ru'",
    ),
    (
        "include_of_a_directory",
        blueprint().replace("name: t\n", "include: [.]\n"),
        "is a directory",
    ),
    (
        "smart_process_pipelines_by_one_name",
        "version: 1\nsmart_processes:\n  - code: crews\n    title: Бригады\n"
        "    switches: {categories: true}\n    pipelines:\n"
        "      - {code: a, name: Одна, stages: [{code: NEW, name: Н}, "
        "{code: WON, name: У, semantics: success}, {code: LOSE, name: П, semantics: failure}]}\n"
        "      - {code: b, name: Одна, stages: [{code: NEW, name: Н}, "
        "{code: WON, name: У, semantics: success}, {code: LOSE, name: П, semantics: failure}]}\n",
        "are matched by name",
    ),
]


@pytest.mark.parametrize(("name", "text", "reason"), CASES, ids=[c[0] for c in CASES])
def test_refused_with_file_and_line(tmp_path: Path, name: str, text: str, reason: str) -> None:
    path = tmp_path / "b.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BlueprintError) as info:
        load_blueprint(path)
    issues = [str(i) for i in info.value.issues]
    assert any(reason in i for i in issues), issues
    assert len(issues) == 1, "one mistake, one issue"
    assert all(i.startswith(f"{path}:") and i.split(":")[1].isdigit() for i in issues), issues


def test_a_saved_plan_is_checked_like_a_blueprint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from b24kit.cli.app import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    bp = Path(__file__).resolve().parent.parent / "blueprints" / "example.yaml"
    with pytest.raises(SystemExit):
        main(["plan", str(bp), "-p", "sandbox", "-o", "p.plan"])
    saved = json.loads(Path("p.plan").read_text(encoding="utf-8"))
    saved["blueprint"]["links"][0]["parent"]["stage"] = "NOWHERE"  # edited by hand
    Path("p.plan").write_text(json.dumps(saved), encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main(["apply", "p.plan", "-p", "sandbox", "--yes"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "the plan's blueprint is not valid" in err, err
    assert "has no stage 'NOWHERE'" in err
