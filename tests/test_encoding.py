"""The shared PHP-style encoding: what the client sends is what the sandbox reads."""

import pytest

from b24kit.encoding import as_list, build_query, parse_query, php_truthy

UGLY = "a&b=c?d#e%f+g \"h' \n i\r\nЖ🚜"


def test_nested_round_trip() -> None:
    params = {
        "fields": {"TITLE": UGLY, "PHONE": [{"VALUE": "+7 (900)", "VALUE_TYPE": "WORK"}]},
        "filter": {">=OPPORTUNITY": 10, "@ID": [1, 2]},
        "select": ["ID", "TITLE"],
    }
    back = parse_query(build_query(params))
    assert back["fields"]["TITLE"] == UGLY, "ugly characters survive the form encoding"
    assert back["fields"]["PHONE"]["0"]["VALUE"] == "+7 (900)", "nested list of dicts survives"
    assert back["filter"][">=OPPORTUNITY"] == "10", "an operator in a key survives"
    assert as_list(back["filter"]["@ID"]) == ["1", "2"], "a list value survives"
    assert as_list(back["select"]) == ["ID", "TITLE"]


def test_php_bracket_forms() -> None:
    parsed = parse_query("select[]=ID&select[]=TITLE&filter%5B%3EID%5D=5&a[b][c]=1&x=")
    assert as_list(parsed["select"]) == ["ID", "TITLE"], "key[] appends"
    assert parsed["filter"] == {">ID": "5"}, "percent-encoded brackets and operator decode"
    assert parsed["a"] == {"b": {"c": "1"}}
    assert parsed["x"] == ""


def test_scalars_and_empties() -> None:
    assert build_query({"a": True, "b": False, "c": None}) == "a=1&b=0&c="
    assert build_query({"a": [], "f": {}, "b": 1}) == "b=1", (
        "empty arrays are left out, as PHP's http_build_query does"
    )
    assert parse_query("a%5B%5D=")["a"] == {"0": ""}, "because key[]= is [0 => ''] in PHP"


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        ("", False),
        ("0", False),
        (0, False),
        (None, False),
        ("false", True),
        ("1", True),
        (True, True),
        ([], False),
    ],
)
def test_php_truthiness(value: object, truth: bool) -> None:
    assert php_truthy(value) is truth


def test_appending_with_empty_brackets_costs_the_same_for_every_element() -> None:
    """Issue 16, item 8: ``a[b][]=1`` repeated 7,000 times (63 KB, under the event body
    limit) took 8 s to parse, each append scanning the keys before it."""
    import time

    body = "a[b][]=1&" * 7000
    started = time.perf_counter()
    parsed = parse_query(body)
    took = time.perf_counter() - started
    assert list(parsed["a"]["b"]) == [str(i) for i in range(7000)]
    assert took < 1.0, f"{took:.2f} s for 63 KB"
    assert parse_query("a[]=1&a[5]=2&a[]=3&a[-3]=4&a[]=5")["a"] == {
        "0": "1",
        "5": "2",
        "6": "3",
        "-3": "4",
        "7": "5",
    }, "PHP: an empty [] takes the largest integer key so far, plus one"


def test_an_array_dropped_and_made_again_never_inherits_a_count() -> None:
    """The review of the fix above: counters kept by id() alone were inherited by a new
    array made at a freed address; keys that only look numeric crashed int()."""
    for _ in range(50):
        parsed = parse_query("a[x][]=1&a[x][]=2&a[x][]=3&a[x]=s&b[]=z")
        assert parsed["b"] == {"0": "z"}
    odd = parse_query("a[--5]=1&a[²]=2&a[" + "9" * 5000 + "]=3&a[]=4")["a"]
    assert odd["--5"] == "1" and odd["²"] == "2" and odd["0"] == "4"
