"""blueprint/bounds.py: hostile YAML is measured before PyYAML spends seconds on it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from b24kit.blueprint.bounds import expanded_beyond, flow_too_deep
from tests.test_hostile_files import HOSTILE


def test_deep_brackets_are_found_where_they_pass_the_limit() -> None:
    text = "version: 1\nname: x\ndeal: " + "[" * 5000 + "]" * 5000 + "\n"
    started = time.process_time()
    assert flow_too_deep(text, 64) == (3, 7 + 64)  # the 65th bracket on line 3
    assert time.process_time() - started < 0.5, "linear, not the scanner's quadratic time"


def test_brackets_in_quotes_comments_and_words_are_not_nesting() -> None:
    text = (
        "name: '[[[[ it''s [[[['  # [[[[[[[[\n"
        'note: "{{{{ \\" [[[["\n'
        "title: O'Brien [x]\n"
        "x: [[[]], {a: [b]}]\n"
    )
    assert flow_too_deep(text, 3) is None
    assert flow_too_deep(text, 2) == (4, 6)


def test_an_alias_bomb_is_found_at_the_line_that_sets_it_off() -> None:
    node = yaml.compose(HOSTILE["alias-bomb"].decode(), Loader=yaml.SafeLoader)
    started = time.process_time()
    found = expanded_beyond(node, 200_000)
    assert time.process_time() - started < 0.1, "each node is counted once"
    assert found is not None and found.start_mark.line + 1 == 6  # f: nine e's, 597,871 values
    assert expanded_beyond(node, 10**12) is None


def test_ordinary_aliases_and_a_node_inside_itself_are_counted_once() -> None:
    shared = yaml.compose("a: &a [1, 2]\nb: *a\nc: *a\n", Loader=yaml.SafeLoader)
    assert expanded_beyond(shared, 13) is None  # root, 3 keys, 3 x (list + 2)
    assert expanded_beyond(shared, 12) is not None
    looped = yaml.compose("a: &a [x, *a]\n", Loader=yaml.SafeLoader)
    assert expanded_beyond(looped, 100) is None  # the builder refuses it as too deep


def test_compact_nesting_by_the_million_is_refused_not_a_crash(tmp_path: Path) -> None:
    # "- - - … x" nests a block per two characters: libyaml would recurse in C past the
    # stack; the bound sends it to the pure-Python reader, which refuses it cleanly
    from b24kit.blueprint.bounds import block_depth_bound
    from b24kit.blueprint.document import BlueprintError
    from b24kit.blueprint.loader import FAST_DEPTH, read_yaml

    text = "version: 1\nname: x\ndeal:\n  " + "- " * 1_000_000 + "x\n"
    assert block_depth_bound(text) > FAST_DEPTH
    path = tmp_path / "compact.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BlueprintError, match="nested"):
        read_yaml(path)


def test_brackets_in_plain_values_and_block_text_are_not_nesting() -> None:
    # review find: seventy "see [ref" lines, or a note of seventy "[", were refused
    refs = "version: 1\n" + "".join(f"k{i}: see [ref\n" for i in range(70))
    assert flow_too_deep(refs, 64) is None
    note = "version: 1\nnotes: |\n  text " + "[" * 70 + "\n"
    assert flow_too_deep(note, 64) is None
    assert flow_too_deep("x: " + "[" * 70 + "]" * 70 + "\n", 64) == (1, 4 + 64)
