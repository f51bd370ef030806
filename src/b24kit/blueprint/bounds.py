"""Cheap checks that a YAML text is not built to exhaust its reader, made before the
costly steps: PyYAML's scanner takes time quadratic in the depth of flow brackets (ten
seconds of CPU for 5,000 ``[``), and aliases can expand a few lines into billions of
values. Each check names where the file goes too far."""

from __future__ import annotations

import re

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

# what can hold a bracket that is not one: a comment, a quoted string; and the brackets
_FLOW = re.compile(
    r"""(?m)(?:^|(?<=\s))\#[^\n]*"""  # a comment: '#' at the start or after a space
    r"""|(?<![^\s\[{,:])'(?:[^']|'')*'"""  # 'single quoted' (starting where a value can)
    r"""|(?<![^\s\[{,:])"(?:[^"\\]|\\.)*\""""  # "double quoted"
    r"""|[\[\]{}]"""
)


def flow_too_deep(text: str, limit: int) -> tuple[int, int] | None:
    """(line, column), 1-based, of the first ``[`` or ``{`` nested deeper than ``limit``,
    or None. Only a bracket that opens a flow collection counts: inside one, or where a
    value starts (after ``:``, ``-``, ``?``, ``,`` or at the start of a line); not one in
    a quoted string, a comment or a plain value (``see [ref``)."""
    if text.count("[") + text.count("{") <= limit:
        return None
    depth = 0
    for found in _FLOW.finditer(text):
        token = found.group()
        if token in ("[", "{"):
            start = found.start()
            if depth == 0 and not _opens_a_value(text, start):
                continue
            depth += 1
            if depth > limit:
                line = text.count("\n", 0, start) + 1
                return line, start - text.rfind("\n", 0, start)
        elif token in ("]", "}") and depth:
            depth -= 1
    return None


def _opens_a_value(text: str, at: int) -> bool:
    """Whether a bracket at ``at`` stands where a YAML value may start."""
    before = text[text.rfind("\n", 0, at) + 1 : at].rstrip(" \t")
    return not before or before[-1] in ":-?,"


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def expanded_beyond(root: Node, limit: int) -> Node | None:
    """The node where the document, with every alias expanded, passes ``limit`` values,
    or None. Sizes are counted once per node (an alias is the same node object again), so
    a billion-value alias bomb is measured in microseconds."""
    # only collections are sized and walked: a scalar's size is 1 (sizes.get's default),
    # and most nodes are scalars
    sizes: dict[int, int] = {}
    entered: set[int] = set()  # a node inside itself (``&a [*a]``) is counted once
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if done:
            sizes[id(node)] = 1 + sum(sizes.get(id(c), 1) for c in _children(node))
            continue
        if id(node) in entered:
            continue
        entered.add(id(node))
        stack.append((node, True))
        stack.extend(
            (c, False)
            for c in _children(node)
            if type(c) is not ScalarNode and id(c) not in entered
        )
    if sizes.get(id(root), 1) <= limit:
        return None
    node, budget = root, limit - 1
    while True:  # walk down to where the count passes the limit, as the file is written
        for child in _children(node):
            size = sizes.get(id(child), 1)
            if size <= budget:
                budget -= size
                continue
            if size == 1 or child.start_mark.index < node.start_mark.index:
                # a scalar, or an alias of something written earlier: the alias is here
                return child if size == 1 else node
            node, budget = child, budget - 1
            break
        else:
            return node


_LEAD = " -?:\t"  # what a line's block nesting is made of: indentation and compact indicators


def block_depth_bound(text: str) -> int:
    """An upper bound on the block nesting of ``text``: a block inside another starts
    further right, or after another indicator on the same line (``- - x``), so no line
    nests deeper than its leading spaces and indicators. libyaml composes recursively in
    C, where a nesting in the millions (``- - - …`` on one line) would overflow the stack
    instead of failing cleanly: above a small bound the pure-Python reader is used."""
    return max((len(line) - len(line.lstrip(_LEAD)) for line in text.splitlines()), default=0)
