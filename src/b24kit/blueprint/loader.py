"""Load a blueprint: YAML with positions, includes, variables, schema and reference checks.

Every error carries ``file:line:column`` and one line of reason; all errors are collected,
not just the first.
"""

from __future__ import annotations

import difflib
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from b24kit.blueprint.bounds import block_depth_bound, expanded_beyond, flow_too_deep
from b24kit.blueprint.checks import check_references
from b24kit.blueprint.document import BlueprintError, BlueprintIssue, Document, Mark, PathKey
from b24kit.blueprint.model import Blueprint

__all__ = [
    "BlueprintError",
    "BlueprintIssue",
    "Document",
    "Mark",
    "PathKey",
    "load_blueprint",
    "load_document",
    "read_yaml",
    "schema_errors",
    "unknown_key",
]

VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SURROGATE = re.compile(r"[\ud800-\udfff]")


MAX_BYTES = 5 * 1024 * 1024  # a blueprint or mapping larger than this is not one
MAX_NODES = 200_000  # values after aliases are expanded: an alias bomb stops here
MAX_DEPTH = 64  # nesting


class _TooMuch(Exception):
    def __init__(self, node: Node, message: str) -> None:
        super().__init__(message)
        self.node = node


# what the safe constructor makes of a scalar tagged str is the scalar's own text
# (SafeConstructor.construct_yaml_str -> construct_scalar -> node.value): taken as it is,
# not through construct_object's bookkeeping, for the thousands of keys and texts a
# blueprint holds
_STR_TAG = "tag:yaml.org,2002:str"


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file
        self.constructor = SafeConstructor()
        self.issues: list[BlueprintIssue] = []
        self.marks: dict[PathKey, Mark] = {}
        self.nodes = 0

    def mark_of(self, node: Node) -> Mark:
        return Mark(self.file, node.start_mark.line + 1, node.start_mark.column + 1)

    def scalar(self, node: Node) -> Any:
        if type(node) is ScalarNode and node.tag == _STR_TAG:  # most of a file: the text
            return self.text(node, node.value)  # as written, as construct_yaml_str makes it
        return self.text(node, self.constructor.construct_object(node, deep=True))

    def build(self, node: Node, path: PathKey, keyed: bool = False) -> Any:
        """The value of ``node`` at ``path``, its mark kept; ``keyed``: a mapping's value,
        whose mark is its key's, kept by the mapping."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise _TooMuch(
                node, f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)"
            )
        if len(path) > MAX_DEPTH:
            raise _TooMuch(node, f"nested deeper than {MAX_DEPTH} levels")
        if not keyed:
            self.marks[path] = self.mark_of(node)
        if isinstance(node, MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                key = self.scalar(key_node)
                if not isinstance(key, str):
                    self.issues.append(
                        BlueprintIssue(self.mark_of(key_node), f"key {key!r} must be text")
                    )
                    continue
                if key in out:
                    self.issues.append(
                        BlueprintIssue(self.mark_of(key_node), f"duplicate key {key!r}")
                    )
                    continue
                self.marks[(*path, key)] = self.mark_of(key_node)  # a value is where its key is
                out[key] = self.build(value_node, (*path, key), keyed=True)
            return out
        if isinstance(node, SequenceNode):
            return [self.build(item, (*path, i)) for i, item in enumerate(node.value)]
        assert isinstance(node, ScalarNode)
        try:
            return self.scalar(node)
        except (ValueError, TypeError) as exc:  # !!int ten and the like
            self.issues.append(
                BlueprintIssue(
                    self.mark_of(node), f"not a valid {node.tag.rsplit(':', 1)[-1]}: {exc}"
                )
            )
            return None

    def text(self, node: Node, value: Any) -> Any:
        """A string with a lone surrogate (YAML's "\\ud800" escape) is no text: no file
        can hold it and no request can carry it."""
        if isinstance(value, str):
            found = SURROGATE.search(value)
            if found:
                self.issues.append(
                    BlueprintIssue(
                        self.mark_of(node),
                        f"not valid text: a lone surrogate U+{ord(found.group()):04X} "
                        "(an escape of half a character)",
                    )
                )
                return None
        return value


def _decode(name: str, raw: bytes) -> str:
    """UTF-8 (a BOM is allowed); anything else is one error naming the line."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise BlueprintError(
            [BlueprintIssue(Mark(name, 1, 1), "the file is UTF-16: save it as UTF-8")]
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise BlueprintError(
            [
                BlueprintIssue(
                    Mark(name, line, column),
                    f"not UTF-8 (byte 0x{raw[exc.start]:02X}): save the file as UTF-8",
                )
            ]
        ) from None


def _flow_bounded(name: str, text: str) -> None:
    """Brackets nested past MAX_DEPTH are refused before the scanner, which would take
    seconds over them."""
    deep = flow_too_deep(text, MAX_DEPTH)
    if deep is not None:
        raise BlueprintError(
            [BlueprintIssue(Mark(name, *deep), f"nested deeper than {MAX_DEPTH} levels")]
        )


def _aliases_bounded(builder: _Builder, node: Node) -> None:
    """An alias bomb is refused by its size, measured before it is built."""
    bomb = expanded_beyond(node, MAX_NODES)
    if bomb is not None:
        message = f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)"
        raise BlueprintError([BlueprintIssue(builder.mark_of(bomb), message)])


# libyaml's reader, where PyYAML was built with it: the same nodes and marks, ten times
# faster (a tenth of a second less for every load of a company's blueprint)
_FAST_LOADER: Any = getattr(yaml, "CSafeLoader", None)
FAST_DEPTH = 200  # deeper block nesting is read by the pure-Python reader (bounds.py)
_NOT_PRINTABLE = yaml.reader.Reader.NON_PRINTABLE  # what PyYAML refuses and libyaml may not


def _compose(text: str) -> Node | None:
    """The YAML node tree. Through libyaml when the text is shallow enough for its C
    recursion and holds no character PyYAML's reader refuses; anything libyaml refuses is
    read again by the pure-Python reader, whose errors (and the few texts it accepts that
    libyaml does not) are the ones we know."""
    if (
        _FAST_LOADER is not None
        and not _NOT_PRINTABLE.search(text)
        and block_depth_bound(text) <= FAST_DEPTH
    ):
        try:
            node: Node | None = yaml.compose(text, Loader=_FAST_LOADER)
            return node
        except yaml.YAMLError:
            pass
    composed: Node | None = yaml.compose(text, Loader=yaml.SafeLoader)
    return composed


# what read_yaml made of a file's bytes, by file name and bytes: a process that reads the
# same unchanged file again (migrate's prepare after validate, a library caller, the tests'
# hundreds of runs) parses it once. company.yaml costs 25 ms to parse and 0.3 ms to copy.
# Files up to _READ_SMALL bytes are kept (a blueprint is tens of kilobytes; what a 5 MB file
# parses into is not worth holding), the last _READ_KEPT of them.
_READ: OrderedDict[tuple[str, bytes], Document] = OrderedDict()
_READ_KEPT = 16
_READ_SMALL = 256 * 1024


def _copy(value: Any) -> Any:
    """A copy of a document's data that shares nothing mutable with it: the loader's
    callers merge includes into it and substitute variables in place."""
    if type(value) is dict:
        return {key: _copy(item) for key, item in value.items()}
    if type(value) is list:
        return [_copy(item) for item in value]
    if type(value) is tuple:  # !!omap and !!pairs: (key, value) pairs
        return tuple(_copy(item) for item in value)
    if type(value) is set:  # !!set: of hashable, so immutable, members
        return set(value)
    return value  # str, int, float, bool, None, bytes, date, datetime: immutable


def read_yaml(path: Path) -> Document:
    """A YAML file read safely: at most MAX_BYTES, UTF-8, no custom tags (the safe loader),
    aliases and nesting bounded; every failure one file:line:column issue. The same bytes
    read again from the same file name are not parsed again (a fresh copy is returned)."""
    name = str(path)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_BYTES + 1)
    except OSError as exc:
        raise BlueprintError(
            [BlueprintIssue(Mark(name, 1, 1), f"cannot read: {exc.strerror}")]
        ) from None
    if len(raw) > MAX_BYTES:
        raise BlueprintError(
            [
                BlueprintIssue(
                    Mark(name, 1, 1), f"larger than {MAX_BYTES} bytes: not a blueprint or mapping"
                )
            ]
        )
    if len(raw) > _READ_SMALL:
        return _parse(name, raw)
    key = (name, raw)
    known = _READ.get(key)
    if known is None:
        known = _parse(name, raw)
        _READ[key] = known
        if len(_READ) > _READ_KEPT:
            _READ.popitem(last=False)
    else:
        _READ.move_to_end(key)
    return Document(_copy(known.data), dict(known.marks))


def _parse(name: str, raw: bytes) -> Document:
    text = _decode(name, raw)
    _flow_bounded(name, text)
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = Mark(name, mark.line + 1, mark.column + 1) if mark else Mark(name, 1, 1)
        raise BlueprintError([BlueprintIssue(where, f"not valid YAML: {exc.problem}")]) from None
    except yaml.YAMLError as exc:  # the reader: NUL and other characters YAML refuses
        position = getattr(exc, "position", 0) or 0
        line = text.count("\n", 0, position) + 1
        column = position - text.rfind("\n", 0, position)
        what = getattr(exc, "reason", None) or "not valid YAML"
        character = getattr(exc, "character", None)  # a code point, or bytes' one byte
        if isinstance(character, int):  # which one, as U+XXXX: it may be unprintable
            what = f"the character U+{character:04X} is not allowed" + (
                " (a binary file, or UTF-16 without its BOM?)" if character == 0 else ""
            )
        raise BlueprintError(
            [BlueprintIssue(Mark(name, line, column), f"not valid YAML: {what}")]
        ) from None
    except RecursionError:
        raise BlueprintError([BlueprintIssue(Mark(name, 1, 1), "nested too deep")]) from None
    if node is None:
        raise BlueprintError([BlueprintIssue(Mark(name, 1, 1), "the file is empty")])
    builder = _Builder(name)
    _aliases_bounded(builder, node)
    try:
        data = builder.build(node, ())
    except _TooMuch as exc:
        raise BlueprintError([BlueprintIssue(builder.mark_of(exc.node), str(exc))]) from None
    except yaml.MarkedYAMLError as exc:  # tags the safe loader does not know: merge keys too
        mark = exc.problem_mark
        where = Mark(name, mark.line + 1, mark.column + 1) if mark else Mark(name, 1, 1)
        problem = str(exc.problem or "")
        if "merge" in problem:
            problem = "merge keys (<<) are not supported: write the values out"
        raise BlueprintError([BlueprintIssue(where, f"not allowed here: {problem}")]) from None
    except RecursionError:
        raise BlueprintError([BlueprintIssue(Mark(name, 1, 1), "nested too deep")]) from None
    if builder.issues:
        raise BlueprintError(builder.issues)
    if not isinstance(data, dict):
        raise BlueprintError([BlueprintIssue(builder.marks[()], "the top level must be a mapping")])
    return Document(data, builder.marks)


def _shift(marks: dict[PathKey, Mark], prefix: PathKey, offset: int) -> dict[PathKey, Mark]:
    """Renumber list indexes under ``prefix`` by ``offset`` (an include appended to a list)."""
    out: dict[PathKey, Mark] = {}
    n = len(prefix)
    for key, mark in marks.items():
        index = key[n] if key[:n] == prefix and len(key) > n else None
        if isinstance(index, int):
            key = (*prefix, index + offset, *key[n + 1 :])
        out[key] = mark
    return out


def _merge(base: Document, extra: Document, path: PathKey = ()) -> None:
    """Merge ``extra`` into ``base``: mappings deep-merge, lists concatenate, and a value
    set in ``base`` wins over an included one."""
    target = base.data
    for key in path:
        target = target[key]
    source = extra.data
    for key in path:
        source = source[key]
    for key, value in source.items():
        here = (*path, key)
        if key not in target:
            target[key] = value
            for mark_key, mark in extra.marks.items():
                if mark_key[: len(here)] == here:
                    base.marks.setdefault(mark_key, mark)
        elif isinstance(target[key], dict) and isinstance(value, dict):
            _merge(base, extra, here)
        elif isinstance(target[key], list) and isinstance(value, list):
            offset = len(target[key])
            shifted = _shift(
                {k: m for k, m in extra.marks.items() if k[: len(here)] == here}, here, offset
            )
            target[key].extend(value)
            for mark_key, mark in shifted.items():
                if mark_key != here:
                    base.marks[mark_key] = mark


def _with_includes(path: Path, stack: tuple[Path, ...]) -> Document:
    doc = read_yaml(path)
    includes = doc.data.get("include") or []
    if not isinstance(includes, list):
        raise BlueprintError(
            [BlueprintIssue(doc.mark(("include",)), "include must be a list of files")]
        )
    issues: list[BlueprintIssue] = []
    for index, item in enumerate(includes):
        mark = doc.mark(("include", index))
        target = (path.parent / str(item)).resolve()
        if target in stack or target == path.resolve():
            chain = " -> ".join(p.name for p in (*stack, path.resolve(), target))
            issues.append(BlueprintIssue(mark, f"circular include: {chain}"))
            continue
        if not target.exists():
            issues.append(BlueprintIssue(mark, f"included file {item!r} does not exist"))
            continue
        if target.is_dir():
            issues.append(BlueprintIssue(mark, f"included file {item!r} is a directory"))
            continue
        try:
            included = _with_includes(target, (*stack, path.resolve()))
        except BlueprintError as exc:
            issues.extend(exc.issues)
            continue
        included.data.pop("include", None)
        included.data.pop("version", None)
        _merge(doc, included)
    if issues:
        raise BlueprintError(issues)
    return doc


def _substitute(doc: Document, variables: dict[str, str]) -> list[BlueprintIssue]:
    """Put the variables' values in place of ``${name}`` in every text of ``doc`` (its own
    copy: read_yaml's callers get one each), in place."""
    issues: list[BlueprintIssue] = []

    def text(value: str, path: PathKey) -> str:
        def repl(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in variables:
                issues.append(BlueprintIssue(doc.mark(path), f"unknown variable ${{{name}}}"))
                return match.group(0)
            return variables[name]

        return VARIABLE.sub(repl, value)

    def walk(container: dict[Any, Any] | list[Any], path: PathKey) -> None:
        pairs = container.items() if type(container) is dict else enumerate(container)
        for key, value in pairs:  # values are replaced, never added: iterating stays safe
            if type(value) is dict or type(value) is list:
                walk(value, (*path, key))
            elif isinstance(value, str) and "${" in value:
                container[key] = text(value, (*path, key))

    if isinstance(doc.data, (dict, list)):
        walk(doc.data, ())
    return issues


def load_document(path: Path, variables: dict[str, str] | None = None) -> Document:
    doc = _with_includes(path, ())
    defined = doc.data.get("variables") or {}
    merged = {str(k): str(v) for k, v in defined.items()} if isinstance(defined, dict) else {}
    merged.update(variables or {})
    issues = _substitute(doc, merged)
    if issues:
        raise BlueprintError(issues)
    return doc


def _loc_text(loc: tuple[Any, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        else:
            parts.append(("." if parts else "") + str(item))
    return "".join(parts)


def load_blueprint(
    path: Path, variables: dict[str, str] | None = None
) -> tuple[Blueprint, Document]:
    """Load, merge includes, substitute variables, check the schema and the references.
    Raises BlueprintError with every problem found."""

    doc = load_document(path, variables)
    try:
        blueprint = Blueprint.model_validate(doc.data)
    except ValidationError as exc:
        issues = []
        for error in _one_branch(schema_errors(Blueprint, exc), doc.data):
            loc = tuple(error["loc"])
            # drop pydantic's union/literal tags so the path matches the document
            path_loc = tuple(p for p in loc if isinstance(p, int) or p in _keys(doc.data, loc))
            message = error["msg"]
            if error["type"] == "extra_forbidden":
                message = unknown_key(Blueprint, loc)
            elif error["type"] == "missing":
                message = f"{loc[-1]!r} is required"
            shown = tuple(p for p in loc if not _is_tag(p, doc.data, loc))
            issues.append(BlueprintIssue(doc.mark(path_loc), f"{_loc_text(shown)}: {message}"))
        raise BlueprintError(sorted(issues, key=lambda i: (i.mark.file, i.mark.line))) from None
    issues = check_references(blueprint, doc)
    if issues:
        raise BlueprintError(issues)
    return blueprint, doc


# pydantic's names for the branches of a union in an error's location: str,
# function-after[...], dict[...], literal[...], [key]
_TAG = re.compile(r"\[key\]|str|int|[a-z-]+\[.*\]", re.DOTALL)


def _is_tag(part: Any, data: Any, loc: tuple[Any, ...]) -> bool:
    """Whether ``part`` of an error's location names a branch of a union, not a key of a
    mapping along the location."""
    if not (isinstance(part, str) and _TAG.fullmatch(part)):
        return False
    node = data
    for item in loc:
        if isinstance(node, dict) and part in node:
            return False
        if isinstance(node, dict) and isinstance(item, str):
            node = node.get(item)
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
    return True


def _one_branch(errors: list[Any], data: Any) -> list[Any]:
    """A value that may be one of several kinds (a label: text, or text per language) fails
    each kind it is not; of one value's errors, keep those of the kind it was written as:
    the errors that say more than "not this kind", or only the first when none does."""
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        cut = next((i for i, part in enumerate(loc) if _is_tag(part, data, loc)), None)
        if cut is not None:
            groups.setdefault(loc[:cut], []).append(error)
    dropped: set[int] = set()
    for group in groups.values():
        kinds = [e for e in group if str(e["type"]).endswith("_type")]
        keep = [e for e in group if e not in kinds] or kinds[:1]
        dropped.update(id(e) for e in group if not any(e is k for k in keep))
    return [e for e in errors if id(e) not in dropped]


def _keys(data: Any, loc: tuple[Any, ...]) -> set[str]:
    """Every key that appears along ``loc`` in the data (to filter pydantic's tags)."""
    keys: set[str] = set()
    node = data
    for item in loc:
        if isinstance(node, dict):
            keys.update(node.keys())
            node = node.get(item) if isinstance(item, str) else None
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
        else:
            if isinstance(item, str):
                keys.add(item)
            break
    return keys


def unknown_key(model: type[BaseModel], loc: tuple[Any, ...]) -> str:
    """The reason for a key at ``loc`` that ``model`` does not have there ("unknown key
    'x'"), with the closest key it has (or the keys it has)."""
    key = str(loc[-1])
    known = _keys_at(model, loc[:-1])
    near = _near(key, known)
    if near:
        return f"unknown key {key!r}; did you mean {near!r}?"
    return f"unknown key {key!r}" + (f"; expected one of: {', '.join(known)}" if known else "")


def schema_errors(model: type[BaseModel], exc: ValidationError) -> list[Any]:
    """Pydantic's errors, less each "'x' is required" that a misspelt key beside it
    answers (its did-you-mean names x): one mistake, one line."""
    errors = exc.errors()
    answered = set()
    for error in errors:
        if error["type"] == "extra_forbidden":
            loc = tuple(error["loc"])
            near = _near(str(loc[-1]), _keys_at(model, loc[:-1]))
            if near:
                answered.add((*loc[:-1], near))
    return [e for e in errors if not (e["type"] == "missing" and tuple(e["loc"]) in answered)]


def _near(key: str, known: list[str]) -> str | None:
    near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return near[0] if near else None


def _keys_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The field names of the model found at ``loc`` (list indexes and mapping keys along
    the way are stepped over); none when the path leads elsewhere."""
    current: type[BaseModel] | None = model
    keyed = False  # the last field was a mapping of models: the next part is its key
    for part in loc:
        if isinstance(part, int):
            continue
        if keyed:
            keyed = False
            continue
        field = current.model_fields.get(str(part)) if current is not None else None
        if field is None:
            return []
        current, keyed = _model_in(field.annotation)
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model an annotation holds (in a list, a mapping's values, an optional), and
    whether it is the values of a mapping."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    if get_origin(annotation) is dict:
        return _model_in(get_args(annotation)[1])[0], True
    for arg in get_args(annotation):
        found, keyed = _model_in(arg)
        if found is not None:
            return found, keyed
    return None, False
