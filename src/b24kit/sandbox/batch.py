"""``batch``: up to 50 commands in one request, with ``$result[...]`` references.

Follows the rest module's own code (CRestProvider::methodsBatch, CRestUtil::ParseBatchQuery):
- commands past the 50th are not run; each gets ``ERROR_BATCH_LENGTH_EXCEEDED`` in
  ``result_error`` (the call itself succeeds);
- references are ``$result``, ``$next``, ``$total``, ``$time`` and ``$error`` followed
  by ``[key]`` segments; a value that IS a reference takes the referenced value as is
  (array included); a reference inside a longer string is replaced by its text; a
  missing key stops the walk where it is;
- ``halt`` is PHP-truthy (``"false"`` is true!) and stops after the first failed command.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from b24kit.encoding import parse_query

MAX_COMMANDS = 50
REFERENCE = re.compile(r"\$(result|next|total|time|error)([^\s]*)", re.IGNORECASE)
SEGMENT = re.compile(r"\[([^\]]+)\]")


def php_string(value: Any) -> str:
    if value is None or value is False:
        return ""
    if value is True:
        return "1"
    if isinstance(value, (list, dict)):
        return "Array"
    return str(value)


def _walk(root: Any, path: str) -> tuple[bool, Any]:
    segments = SEGMENT.findall(path)
    if not segments:
        return False, None
    node = root
    for key in segments:
        if isinstance(node, Mapping) and node.get(key) is not None:
            node = node[key]
        elif (
            isinstance(node, list)
            and key.isdigit()
            and int(key) < len(node)
            and node[int(key)] is not None
        ):
            node = node[int(key)]
        else:
            break
    return True, node


def substitute(value: Any, roots: Mapping[str, Any]) -> Any:
    if type(value) is str:  # the common case first: parsed parameters are text and dicts
        if "$" not in value:
            return value
    elif isinstance(value, Mapping):  # a text without "$" is kept without a call for it
        return {
            k: v if type(v) is str and "$" not in v else substitute(v, roots)
            for k, v in value.items()
        }
    elif isinstance(value, list):
        return [v if type(v) is str and "$" not in v else substitute(v, roots) for v in value]
    elif not isinstance(value, str) or "$" not in value:
        return value
    text: Any = value
    for match in REFERENCE.finditer(value):
        found, target = _walk(roots[match.group(1).lower()], match.group(2))
        if not found:
            continue
        if match.group(0) == value:
            return target
        text = str(text).replace(match.group(0), php_string(target))
    return text


def split_command(command: Any) -> tuple[str, dict[str, Any]]:
    text = "" if command is None else str(command)
    method, _, query = text.partition("?")
    return method.strip(), parse_query(query)


def php_map(entries: dict[str, Any]) -> Any:
    """PHP's json_encode of an array: [] when empty, a list when keys are 0..n-1."""
    if not entries:
        return []
    if list(entries) == [str(i) for i in range(len(entries))]:
        return list(entries.values())
    return entries


Runner = Callable[[str, dict[str, Any], str], tuple[bool, dict[str, Any]]]


def run_batch(commands: Mapping[str, Any], halt: bool, runner: Runner) -> dict[str, Any]:
    """``runner(method, params, key)`` -> (ok, outcome): outcome has ``result`` and optionally
    ``total``/``next``/``time`` on success, or ``error``/``error_description``."""
    buckets: dict[str, dict[str, Any]] = {
        "result": {},
        "next": {},
        "total": {},
        "time": {},
        "error": {},
    }
    for index, (key, command) in enumerate(commands.items()):
        key = str(key)
        if index >= MAX_COMMANDS:
            ok, outcome = (
                False,
                {
                    "error": "ERROR_BATCH_LENGTH_EXCEEDED",
                    "error_description": "Max batch length exceeded",
                },
            )
        else:
            text = "" if command is None else str(command)
            method, params = split_command(text)
            if "$" in text or "%24" in text:  # only a command with a "$" may refer
                params = substitute(params, buckets)
            ok, outcome = runner(method, params, key)
        if ok:
            for name in ("result", "next", "total", "time"):
                if name in outcome:
                    buckets[name][key] = outcome[name]
        else:
            buckets["error"][key] = {
                "error": outcome["error"],
                "error_description": outcome["error_description"],
            }
            if "time" in outcome:
                buckets["time"][key] = outcome["time"]
            if halt:
                break
    return {
        "result": php_map(buckets["result"]),
        "result_error": php_map(buckets["error"]),
        "result_total": php_map(buckets["total"]),
        "result_next": php_map(buckets["next"]),
        "result_time": php_map(buckets["time"]),
    }
