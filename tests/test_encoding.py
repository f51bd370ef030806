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


# The fast paths of the encoding (issue 12: the suite's CPU) must answer exactly as the
# standard library's quote_plus / unquote_plus, which they stand in for.
TRICKY = ["", "a", " ", "+", "%", "&", "=", "[", "]", "%5B", "%5b", "%5D", "%3E", "%2B", "%25"]
TRICKY += ["%", "%4", "%zz", "%G1", "%e2%82%ac", "%E2%82", "%FF", "%C3%A9", "Ж", "🚜", "$", "\n"]


def test_quote_answers_as_quote_plus() -> None:
    from urllib.parse import quote_plus

    from b24kit.encoding import _quote

    for code in range(0x250):  # every ASCII character, then some of Latin and Cyrillic
        text = chr(code)
        assert _quote(text) == quote_plus(text), repr(text)
        assert _quote(f"x{text}[y]{text}") == quote_plus(f"x{text}[y]{text}"), repr(text)
    for text in [*TRICKY, UGLY, "filter[>=ID]", "$result[c6][49][ID]", "a b+c", "Ж[0]"]:
        assert _quote(text) == quote_plus(text), repr(text)


def test_unquote_answers_as_unquote_plus() -> None:
    from urllib.parse import quote, quote_plus, unquote_plus

    from b24kit.encoding import _unquote

    for code in range(256):
        for escape in (f"%{code:02X}", f"%{code:02x}"):
            for text in (escape, f"a{escape}b", f"%5B{escape}%5D", f"{escape}%C3%A9+"):
                assert _unquote(text) == unquote_plus(text), repr(text)
    for text in [*TRICKY, UGLY, quote(UGLY), quote_plus(UGLY), "%%5B", "%255B", "%5%5BB"]:
        assert _unquote(text) == unquote_plus(text), repr(text)


def test_unquote_agrees_on_random_mixtures() -> None:
    import random
    from urllib.parse import unquote_plus

    from b24kit.encoding import _unquote

    rng = random.Random(12)
    for _ in range(5000):
        text = "".join(rng.choice(TRICKY) for _ in range(rng.randint(0, 8)))
        assert _unquote(text) == unquote_plus(text), repr(text)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "+",
        "%",
        "&",
        "=",
        "a=b&c=d",
        "100%",
        "%5B0%5D",
        "[0]",
        " + ",
        "Жжж 🚜",
        UGLY,
        "$result[c1][0][ID]",
    ],
)
def test_odd_values_and_keys_round_trip(value: str) -> None:
    # a key is any text but brackets, which PHP reads as nesting (so does parse_query)
    key = value if value and "[" not in value and "]" not in value else "x"
    params = {
        "fields": {key: value, "LIST": [value, [value, {"k": value}], ""]},
        "select": ["ID", value],
        "filter": {f">={key}": value, "@ID": [1, 2.0, True, None]},
    }
    back = parse_query(build_query(params))
    assert back["fields"][key] == value
    assert back["fields"]["LIST"] == {"0": value, "1": {"0": value, "1": {"k": value}}, "2": ""}
    assert as_list(back["select"]) == ["ID", value]
    assert back["filter"][f">={key}"] == value
    assert as_list(back["filter"]["@ID"]) == ["1", "2", "1", ""]


def _reference_parse(query: str) -> dict[str, object]:
    """parse_query as it was before its fast paths: unquote_plus, and the array count
    looked up for every key segment."""
    import re
    from urllib.parse import unquote_plus

    from b24kit.encoding import _split_key

    result: dict[str, object] = {}
    next_free: dict[int, tuple[dict[str, object], int]] = {}
    for chunk in query.split("&"):
        raw_key, _, raw_value = chunk.partition("=")
        key = unquote_plus(raw_key)
        if not chunk or not key:
            continue
        node, path = result, _split_key(key)
        for index, part in enumerate(path):
            entry = next_free.get(id(node))
            seen = entry[1] if entry is not None and entry[0] is node else None
            if part == "":
                part = str(seen if seen is not None else 0)
            if re.fullmatch(r"-?[0-9]{1,18}", part):
                number = int(part) + 1
                next_free[id(node)] = (node, number if seen is None else max(seen, number))
            if index == len(path) - 1:
                node[part] = unquote_plus(raw_value)
                break
            child = node.get(part)
            if not isinstance(child, dict):
                child = {}
                node[part] = child
            node = child
    return result


def test_parse_query_agrees_with_the_reference_on_random_queries() -> None:
    import random

    keys = ["a", "a[]", "a[b]", "a[]", "a[0]", "a[-1]", "a[b][]", "a[b][c]", "a[5]", "%5B", "b"]
    keys += ["a%5B%5D", "a[007]", "a[" + "9" * 18 + "]", "a[" + "9" * 19 + "]", "a[b", "a]", ""]
    keys += ["a+b[c]", "a%5b0%5d", "a[%2B]", "a%5B%255D", "%D0%96[%D0%96]", "a[%]"]
    values = ["", "1", "x+y", "%26", "%3D", "a=b", "%C3%A9", "%zz", "Ж", "%5B", "%255B", "%"]
    rng = random.Random(7)
    for _ in range(3000):
        query = "&".join(
            rng.choice(keys) + rng.choice(["=", ""]) + rng.choice(values)
            for _ in range(rng.randint(0, 7))
        )
        assert parse_query(query) == _reference_parse(query), query
