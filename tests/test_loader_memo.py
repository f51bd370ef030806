"""read_yaml parses a file's bytes once per process: what it returns again is a copy of its
own, and changed bytes, or the same bytes under another name, are read as themselves."""

from __future__ import annotations

from pathlib import Path

from b24kit.blueprint.loader import load_blueprint, load_document, read_yaml

TEXT = """\
version: 1
variables: {who: Иван}
deal:
  pipelines:
    - code: sales
      name: Продажи ${who}
      stages:
        - {code: NEW, name: Новая}
        - {code: WON, name: Успех, semantics: success}
        - {code: LOSE, name: Провал, semantics: failure}
"""


def test_a_second_read_is_an_equal_copy_sharing_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bp.yaml"
    path.write_text(TEXT, encoding="utf-8")
    first = read_yaml(path)
    first.data["deal"]["pipelines"][0]["stages"].append({"code": "X"})
    first.data["extra"] = 1
    first.marks.clear()
    second = read_yaml(path)
    assert "extra" not in second.data
    assert len(second.data["deal"]["pipelines"][0]["stages"]) == 3
    assert second.marks[("deal", "pipelines", 0, "name")].line == 6


def test_variables_are_substituted_again_on_every_load(tmp_path: Path) -> None:
    path = tmp_path / "bp.yaml"
    path.write_text(TEXT, encoding="utf-8")
    assert load_document(path).data["deal"]["pipelines"][0]["name"] == "Продажи Иван"
    other = load_document(path, {"who": "Пётр"})
    assert other.data["deal"]["pipelines"][0]["name"] == "Продажи Пётр"
    blueprint, _ = load_blueprint(path)
    assert blueprint.deal.pipelines[0].name == "Продажи Иван"


def test_changed_bytes_and_another_name_are_read_as_themselves(tmp_path: Path) -> None:
    path = tmp_path / "bp.yaml"
    path.write_text(TEXT, encoding="utf-8")
    read_yaml(path)
    path.write_text(TEXT.replace("Новая", "Свежая"), encoding="utf-8")
    stages = read_yaml(path).data["deal"]["pipelines"][0]["stages"]
    assert stages[0]["name"] == "Свежая"
    twin = tmp_path / "twin.yaml"
    twin.write_text(TEXT, encoding="utf-8")
    assert read_yaml(twin).marks[("deal",)].file == str(twin)


def test_a_large_file_is_read_but_not_kept(tmp_path: Path) -> None:
    """What a file of megabytes parses into is not held for the process's life."""
    from b24kit.blueprint import loader

    path = tmp_path / "big.yaml"
    path.write_text(TEXT + "notes:\n" + "".join(f"  - n{i}\n" for i in range(60_000)), "utf-8")
    assert path.stat().st_size > loader._READ_SMALL
    kept = len(loader._READ)
    assert len(read_yaml(path).data["notes"]) == 60_000
    assert len(loader._READ) == kept and not any(k[0] == str(path) for k in loader._READ)
