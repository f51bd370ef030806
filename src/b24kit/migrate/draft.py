"""``migrate init``: draft a mapping from a sheet, a blueprint and, when one is named, the
portal (issue 10, item 6).

- Columns are classified by their header AND their content (``classify_columns``): a
  header's words offer roles, in the order of ``RULES``; the first whose content fits is
  taken (money looks like money to ``parse_money``, dates like dates, phones like
  phones), so «Цена клиенту» is the deal's amount, not the client's name. A column whose
  header and content disagree is taken for what its content says (or its header, when
  the content says nothing) with a ``# TODO`` comment saying so.
- Value maps (stages, the direction's pipeline, the source, enumerations) are drafted
  from the distinct words of the sheet (``draft_values``), each with its count: a word
  that resembles exactly one stage's, pipeline's or item's name or code goes under it;
  every other word goes under ``TODO``.
- The names of the person columns are matched to the portal's users (``match_users``)
  by last name or full name; a name with no single match is ``TODO``, never 0.

``migrate run`` refuses a mapping with a TODO value or key left (b24kit.migrate.todo).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from b24kit.blueprint.model import Blueprint, CustomField, Pipeline
from b24kit.client import B24Client, read_all
from b24kit.errors import InputError
from b24kit.migrate.parsers import (
    ParseError,
    normalize_word,
    parse_date,
    parse_emails,
    parse_money,
    parse_phones,
)
from b24kit.migrate.sources import Table
from b24kit.migrate.todo import TODO
from b24kit.migrate.yamltext import Flow, Noted, comment_text, dump
from b24kit.portal.ids import uf_name
from b24kit.portal.users import display_name, read_active_users

# A header's words -> the role they suggest, most specific first; a header may suggest
# several («Цена клиенту»: the client, the price) and its content decides among them.
RULES: list[tuple[str, str]] = [
    (r"^(№|#|n|номер|id)$", "row_id"),
    (r"подрядчик.*тел|тел.*подрядчик", "contractor.phone"),
    (r"оценк.*подрядчик|рейтинг", "child.rating"),
    (r"подрядчик|перевозчик|исполнитель", "contractor.title"),
    (r"тел", "contact.phone"),
    (r"e-?mail|почта", "contact.email"),
    (r"компан|организац|юр", "contact.company"),
    (r"клиент|заказчик|контрагент|фио", "contact.name"),
    (r"логист", "child.logist"),
    (r"себестоим|закуп|стоимость подрядчик", "child.cost"),
    (r"дата", "parent.BEGINDATE"),
    (r"цена|сумма|стоимость|бюджет", "parent.OPPORTUNITY"),
    (r"статус|стадия|этап", "parent.stage"),
    (r"направлени|вид деятельност|вид услуг|тип услуг|воронк", "parent.route"),
    (r"менеджер|продавец|ответствен", "parent.ASSIGNED_BY_ID"),
    (r"источник", "parent.SOURCE_ID"),
    (r"коммент|примечан|заметк", "comment"),
    (r"что|груз|техник|наименован|описан|услуг", "parent.title"),
]

ROLE_NAMES = {
    "row_id": "the row's number",
    "contractor.phone": "the contractor's phone",
    "child.rating": "the contractor's rating",
    "contractor.title": "the contractor",
    "contact.phone": "the client's phone",
    "contact.email": "the client's e-mail",
    "contact.company": "the client's company",
    "contact.name": "the client's name",
    "child.logist": "the logistician",
    "child.cost": "the cost",
    "parent.BEGINDATE": "the deal's date (BEGINDATE)",
    "parent.OPPORTUNITY": "the deal's amount (OPPORTUNITY)",
    "parent.stage": "the deal's stage",
    "parent.route": "the deal's pipeline (its direction)",
    "parent.ASSIGNED_BY_ID": "the deal's manager",
    "parent.SOURCE_ID": "the deal's source",
    "comment": "a comment",
    "parent.title": "the deal's title",
}

# What a role's values look like; a role not named here holds words (names, text).
EXPECTS = {
    "row_id": {"money", "text", "date", "phone", "email"},
    "contractor.phone": {"phone"},
    "contact.phone": {"phone"},
    "contact.email": {"email"},
    "parent.BEGINDATE": {"date"},
    "parent.OPPORTUNITY": {"money"},
    "child.cost": {"money"},
    "child.rating": {"text", "money"},
}
# roles whose column holds a few words, each mapped to a code: at most this many distinct
FEW = {"parent.stage": 40, "parent.SOURCE_ID": 40, "child.rating": 20, "parent.route": 12}
# a column's content alone names these roles (a header that said otherwise is a TODO)
BY_CONTENT = {
    "money": "parent.OPPORTUNITY",
    "date": "parent.BEGINDATE",
    "phone": "contact.phone",
    "email": "contact.email",
}
KIND_NAMES = {
    "money": "amounts",
    "date": "dates",
    "phone": "phone numbers",
    "email": "e-mail addresses",
    "text": "words",
}
MOST = 0.7  # the share of a column's values that must read as a kind for it to be that kind


# ----------------------------------------------------------------- content
@dataclass(frozen=True)
class Profile:
    """What a column's non-empty values look like."""

    filled: int
    kind: str  # money, date, phone, email, text; "empty" when nothing is filled
    share: float  # of the values that read as ``kind``
    words: Counter[str] = field(default_factory=Counter)  # normalised word -> count
    # the share of the values each parser reads (dates: spreadsheet serials too)
    shares: dict[str, float] = field(default_factory=dict)


def _reads(parser: Any, value: Any) -> bool:
    try:
        parser(value)
    except (ParseError, InputError, ValueError, TypeError, OverflowError):
        return False
    return True


def _date_shaped(value: Any) -> bool:
    """A date written as one (01.02.2024, 2024-02-01, 1 февраля 2024, a date cell), not a
    bare number that could as well be an amount or a spreadsheet serial."""
    return isinstance(value, date) or (
        isinstance(value, str) and not re.fullmatch(r"\s*\d+([.,]\d+)?\s*", value)
    )


def word(value: Any) -> str:
    """A cell as a value map reads it (Enumeration: normalised text)."""
    return normalize_word(str(value).strip())


def profile(values: Sequence[Any]) -> Profile:
    """The kind of a column's values: the first of e-mail, phone, date, money that most of
    them read as, else text."""
    filled = [v for v in values if v is not None and str(v).strip() != ""]
    words = Counter(word(v) for v in filled)
    if not filled:
        return Profile(0, "empty", 0.0, words)
    n = len(filled)
    dates = [_reads(parse_date, v) for v in filled]
    shares = {
        "email": sum(_reads(parse_emails, v) for v in filled) / n,
        "phone": sum(_reads(parse_phones, v) for v in filled) / n,
        "date": sum(dates) / n,
        "money": sum(_reads(parse_money, v) for v in filled) / n,
    }
    shaped = {
        **shares,
        "date": sum(d and _date_shaped(v) for d, v in zip(dates, filled, strict=True)) / n,
    }
    for kind, share in shaped.items():
        if share >= MOST:
            return Profile(n, kind, share, words, shares)
    return Profile(n, "text", 1 - max(shares.values()), words, shares)


def header_roles(header: str) -> list[str]:
    """The roles a header's words suggest, most specific first."""
    text = header.lower()
    return [role for pattern, role in RULES if re.search(pattern, text)]


def fits(role: str, prof: Profile) -> bool:
    """Whether a column's content fits a role (an empty column fits any)."""
    if prof.kind == "empty":
        return True
    expected = EXPECTS.get(role, {"text"})
    if prof.kind not in expected and not any(prof.shares.get(k, 0) >= MOST for k in expected):
        return False  # a date column of spreadsheet serials reads as dates when it says so
    return role not in FEW or len(prof.words) <= FEW[role]


@dataclass(frozen=True)
class Classified:
    header: str
    role: str | None
    profile: Profile
    note: str = ""  # a "TODO: ..." when the header and the content disagree


def _disagree(header: str, first: str, prof: Profile) -> str:
    share = round(prof.share * 100)
    return (
        f"TODO: check: «{header}» reads as {ROLE_NAMES[first]}, but {share}% of its "
        f"{prof.filled} values are {KIND_NAMES.get(prof.kind, prof.kind)}"
    )


def classify(header: str, prof: Profile, taken: Iterable[str] = ()) -> Classified:
    """One column's role: the first its header suggests that its content fits; when none
    fits, the role its content names (a TODO note says the header disagrees; none when
    another column has it), else, when the content is just words, the header's (a TODO
    note says the content does not look like it)."""
    busy = set(taken)
    offered = header_roles(header)
    free = [r for r in offered if r not in busy]
    role = next((r for r in free if fits(r, prof)), None)
    if role is not None or not offered:
        return Classified(header, role, prof)
    by_content = BY_CONTENT.get(prof.kind)
    if by_content is not None:  # the values say what they are: never the header's other role
        role = by_content if by_content not in busy else None
        return Classified(header, role, prof, _disagree(header, offered[0], prof) if role else "")
    if not free:
        return Classified(header, None, prof)
    return Classified(header, free[0], prof, _disagree(header, free[0], prof))


def column_values(table: Table, header: str) -> list[Any]:
    """The column's cells in the rows a migration reads (no blank or repeated header
    rows)."""
    return [
        row.value(header)
        for row in table.rows
        if not row.blank and not row.repeats_header(table.headers)
    ]


def classify_columns(table: Table) -> list[Classified]:
    """Every column's role, in the sheet's order; a role goes to the first column with it."""
    out: list[Classified] = []
    taken: list[str] = []
    for header in table.headers:
        found = classify(header, profile(column_values(table, header)), taken)
        if found.role is not None:
            taken.append(found.role)
        out.append(found)
    return out


# --------------------------------------------------------------- value maps
@dataclass(frozen=True)
class Choice:
    """A code a value map may name (a stage, a pipeline, an item) and the names it goes
    by (its code among them)."""

    code: str
    names: tuple[str, ...]


def _tokens(text: str) -> list[str]:
    """A name's words, without one- and two-letter ones (в, по, у) when it has others."""
    found = re.findall(r"\w+", normalize_word(text).replace("_", " "))
    long = [t for t in found if not (t.isalpha() and len(t) <= 2)]
    return long or found


def _stem(a: str, b: str) -> bool:
    """Two words that differ only in their endings (рекомендация, рекомендации; новый,
    новая): a common start of at least three letters, at most two letters short of the
    shorter word."""
    if a == b:
        return True
    if not (a.isalpha() and b.isalpha()):
        return False
    common = len(next((a[:i] for i in range(min(len(a), len(b)), 0, -1) if a[:i] == b[:i]), ""))
    return common >= max(3, min(len(a), len(b)) - 2)


def _covers(words: list[str], name: list[str], same: Callable[[str, str], bool]) -> bool:
    return bool(words) and all(any(same(w, n) for n in name) for w in words)


def match_word(text: str, choices: Sequence[Choice]) -> str | None:
    """The one code whose name or code ``text`` resembles: the whole name the same, else
    every word of it the same as a word of the name, else every word a stem of one; None
    when no code, or more than one, matches at the first of these that any does."""
    whole = normalize_word(text)
    words = _tokens(text)

    def same_name(name: str) -> bool:
        return normalize_word(name) == whole

    def same_words(name: str) -> bool:
        return _covers(words, _tokens(name), str.__eq__)

    def stems(name: str) -> bool:
        return _covers(words, _tokens(name), _stem)

    tests: list[Callable[[str], bool]] = [same_name, same_words, stems]
    for test in tests:
        codes = {c.code for c in choices if any(test(n) for n in (c.code, *c.names))}
        if codes:
            return codes.pop() if len(codes) == 1 else None
    return None


@dataclass(frozen=True)
class ValueMap:
    """Sheet words (normalised) under the codes they were matched to, and the undecided
    ones; each word's count in the sheet."""

    matched: dict[str, list[str]]
    todo: list[str]
    counts: Counter[str]

    def values(self) -> dict[str, Any]:
        """The ``values:`` of a mapping, each line's comment giving its words' counts."""
        out: dict[str, Any] = {
            code: Noted(words, self._counted(words)) for code, words in self.matched.items()
        }
        if self.todo:
            out[TODO] = Noted(self.todo, self._counted(self.todo))
        return out

    def _counted(self, words: list[str]) -> str:
        return ", ".join(f"{w} ×{self.counts[w]}" for w in words)


def draft_values(counts: Counter[str], choices: Sequence[Choice]) -> ValueMap:
    """Every distinct sheet word, most frequent first, under the code it resembles (see
    ``match_word``) or under TODO."""
    matched: dict[str, list[str]] = {}
    todo: list[str] = []
    for text, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        code = match_word(text, choices)
        if code is None:
            todo.append(text)
        else:
            matched.setdefault(code, []).append(text)
    order = [c.code for c in choices]
    return ValueMap({c: matched[c] for c in order if c in matched}, todo, counts)


# -------------------------------------------------------------------- users
def _name_forms(user: dict[str, Any]) -> set[str]:
    """The ways a sheet writes this user: last name, first and last, last and first, with
    the middle name, with initials."""
    first, middle, last = (
        normalize_word(str(user.get(k) or "")) for k in ("NAME", "SECOND_NAME", "LAST_NAME")
    )
    if not last:
        return {first} if first else set()
    forms = {last, f"{first} {last}", f"{last} {first}"}
    if middle:
        forms |= {f"{first} {middle} {last}", f"{last} {first} {middle}"}
    initials = f"{first[:1]} {middle[:1]}".strip()
    if initials:
        forms |= {f"{last} {initials}", f"{initials} {last}", f"{last} {first[:1]}"}
    return {f.strip() for f in forms if f.strip()}


def _as_name(text: str) -> str:
    return re.sub(r"\s+", " ", normalize_word(text).replace(".", " ")).strip()


def match_users(
    names: Iterable[str], users: Sequence[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """Each sheet name's portal users: those it names by last name or full name (case-,
    ё- and initials' dots-insensitive). One is a match; none or several are not."""
    forms = [(user, _name_forms(user)) for user in users]
    return {name: [u for u, f in forms if _as_name(name) in f] for name in names}


def people(table: Table, columns: Iterable[str]) -> Counter[str]:
    """The names in the person columns, each as first written, with its count (names that
    differ only in case, spaces or ё are one)."""
    shown: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for header in columns:
        for value in column_values(table, header):
            if value is None or str(value).strip() == "":
                continue
            key = word(value)
            shown.setdefault(key, str(value).strip())
            counts[shown[key]] += 1
    return counts


@dataclass(frozen=True)
class PortalFacts:
    """What the portal tells a draft: its active users (None: they could not be read) and
    its source list (STATUS_ID -> NAME)."""

    users: list[dict[str, Any]] | None = None
    sources: dict[str, str] = field(default_factory=dict)


async def read_portal_facts(client: B24Client) -> PortalFacts:
    """The portal's active users and its sources, for a draft."""
    users = await read_active_users(client)
    rows = await read_all(client, "crm.status.list", {"filter": {"ENTITY_ID": "SOURCE"}})
    return PortalFacts(users, {str(r["STATUS_ID"]): str(r.get("NAME") or "") for r in rows})


# the names a portal in Russian gives its standard sources (crm.status, ENTITY_ID SOURCE)
SOURCE_NAMES_RU = {
    "CALL": "Звонок",
    "EMAIL": "Электронная почта",
    "WEB": "Веб-сайт",
    "ADVERTISING": "Реклама",
    "PARTNER": "Существующий клиент",
    "RECOMMENDATION": "По рекомендации",
    "TRADE_SHOW": "Выставка",
    "OTHER": "Другое",
}


# -------------------------------------------------------------------- draft
@dataclass
class Draft:
    """The mapping's text, and what the person running init should hear (stderr)."""

    text: str
    notes: list[str] = field(default_factory=list)
    todos: int = 0


def target_pipeline(bp: Blueprint) -> Pipeline:
    """The deal pipeline the sheet's rows become deals of: the first that is a link's parent,
    else the first one."""
    parents = {code for link in bp.links for code in link.parent.codes}
    pipeline = next(
        (p for p in bp.deal.pipelines if p.code in parents),
        bp.deal.pipelines[0] if bp.deal.pipelines else None,
    )
    if pipeline is None:
        raise InputError("the blueprint has no deal pipeline to migrate into")
    return pipeline


def route_pipelines(bp: Blueprint, target: Pipeline) -> list[Pipeline]:
    """The pipelines a direction column may send rows to: the links' parent pipelines when
    there are several; else the pipelines with the same stages as the target (one sales
    pipeline per direction); fewer than two: nothing to route."""
    parents = {code for link in bp.links for code in link.parent.codes}
    linked = [p for p in bp.deal.pipelines if p.code in parents]
    if len(linked) >= 2:
        return linked
    codes = [s.code for s in target.stages]
    alike = [p for p in bp.deal.pipelines if [s.code for s in p.stages] == codes]
    return alike if len(alike) >= 2 else []


def _label(f: CustomField) -> str:
    return (
        f.label if isinstance(f.label, str) else f.label.get("ru") or next(iter(f.label.values()))
    )


class _Drafter:
    def __init__(
        self, table: Table, bp: Blueprint, facts: PortalFacts | None, todos: int = 0
    ) -> None:
        self.table, self.bp, self.facts = table, bp, facts
        self.columns = classify_columns(table)
        self.roles = {c.role: c for c in self.columns if c.role}
        self.pipeline = target_pipeline(bp)
        self.notes: list[str] = []
        self.todos = todos

    def has(self, role: str) -> bool:
        return role in self.roles

    def col(self, role: str) -> str:
        return self.roles[role].header

    def spec(self, role: str, parse: str, **extra: Any) -> Any:
        """A field's column rule, with the column's TODO note or what its content is."""
        found = self.roles[role]
        rule = Flow({"column": found.header, "parse": parse, **extra})
        if found.note:
            return Noted(rule, found.note)
        prof = found.profile
        if prof.kind in BY_CONTENT:  # what the content said, for the person checking
            read = round(prof.share * prof.filled)
            return Noted(rule, f"{read} of {prof.filled} values read as {KIND_NAMES[prof.kind]}")
        return rule

    def value_map(self, role: str, choices: Sequence[Choice], what: str) -> dict[str, Any]:
        drafted = draft_values(self.roles[role].profile.words, choices)
        self.todos += bool(drafted.todo)
        values = drafted.values()
        if drafted.todo:
            known = ", ".join(c.code for c in choices) or "none known"
            todo = values[TODO]
            values[TODO] = Noted(todo.value, f"{todo.comment}; {what}: {known}")
        return values

    # ------------------------------------------------------------ sections
    def users(self) -> dict[str, Any]:
        columns = [self.col(r) for r in ("parent.ASSIGNED_BY_ID", "child.logist") if self.has(r)]
        counts = people(self.table, columns)
        if not counts:
            return {}
        names = sorted(counts)
        if self.facts is None or self.facts.users is None:
            self.todos += len(names)
            why = "No portal" if self.facts is None else "The webhook may not read users"
            self.notes.append(
                f"{why}: the {len(names)} name(s) of the person columns are left TODO (give "
                "--portal with a webhook that may read users to match them)"
            )
            return {n: Noted(TODO, f"×{counts[n]}") for n in names}
        found = match_users(names, self.facts.users)
        out: dict[str, Any] = {}
        for name in names:
            users = found[name]
            if len(users) == 1:
                user = users[0]
                out[name] = Noted(int(user["ID"]), f"{display_name(user)}, ×{counts[name]}")
                continue
            self.todos += 1
            why = (
                "several users: " + ", ".join(f"{u['ID']} {display_name(u)}" for u in users)
                if users
                else "no portal user of this name"
            )
            out[name] = Noted(TODO, f"×{counts[name]}; {why}")
        return out

    def title(self) -> str:
        if self.has("parent.title"):
            return "{" + self.col("parent.title") + "}"
        if self.has("contact.name"):
            return "{" + self.col("contact.name") + "}"
        if self.has("row_id"):
            return "Проект {" + self.col("row_id") + "}"
        self.todos += 1
        return "TODO: a title template, such as {Column}: {Other column}"

    def route(self) -> dict[str, Any] | None:
        pipelines = route_pipelines(self.bp, self.pipeline)
        if not self.has("parent.route"):
            return None
        if not pipelines:
            self.notes.append(
                f"«{self.col('parent.route')}» looks like the sales direction, but the "
                "blueprint has no pipelines to route it to: not mapped"
            )
            return None
        choices = [Choice(p.code, (p.name,)) for p in pipelines]
        return {
            "column": self.col("parent.route"),
            "values": self.value_map("parent.route", choices, "pipelines"),
        }

    def stage(self) -> dict[str, Any]:
        stage: dict[str, Any] = {"default": self.pipeline.stages[0].code}
        if self.has("parent.stage"):
            choices = [Choice(s.code, (s.name,)) for s in self.pipeline.stages]
            stage = {
                "column": self.col("parent.stage"),
                **stage,
                "values": self.value_map("parent.stage", choices, "stages"),
            }
        return stage

    def source_choices(self) -> list[Choice]:
        portal = self.facts.sources if self.facts is not None else {}
        codes = portal or {code: "" for code in SOURCE_NAMES_RU}
        return [
            Choice(code, tuple(n for n in (name, SOURCE_NAMES_RU.get(code, "")) if n))
            for code, name in codes.items()
        ]

    def parent_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.has("parent.OPPORTUNITY"):
            fields["OPPORTUNITY"] = self.spec("parent.OPPORTUNITY", "money")
        if self.has("parent.BEGINDATE"):
            fields["BEGINDATE"] = self.spec("parent.BEGINDATE", "date")
        if self.has("parent.ASSIGNED_BY_ID"):
            fields["ASSIGNED_BY_ID"] = self.spec("parent.ASSIGNED_BY_ID", "user")
        if self.has("parent.SOURCE_ID"):
            fields["SOURCE_ID"] = {
                "column": self.col("parent.SOURCE_ID"),
                "parse": "enum",
                "values": self.value_map("parent.SOURCE_ID", self.source_choices(), "sources"),
            }
        return fields

    def rating_field(self) -> tuple[str, list[Choice]]:
        """The deal enumeration field the rating column fills: the one whose label is the
        column's header, else one with RATING in its code; its items as choices."""
        header = normalize_word(self.col("child.rating"))
        enums = [f for f in self.bp.deal.fields if f.type == "enumeration" and f.values]
        chosen = next((f for f in enums if normalize_word(_label(f)) == header), None)
        chosen = chosen or next((f for f in enums if "RATING" in f.code.upper()), None)
        if chosen is None:
            return TODO, []
        return uf_name(chosen.code), [
            Choice(v.xml_id or v.value, (v.value,)) for v in chosen.values or []
        ]

    def child_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if self.has("child.logist"):
            fields["ASSIGNED_BY_ID"] = self.spec("child.logist", "user")
        if self.has("child.cost"):
            fields["OPPORTUNITY"] = self.spec("child.cost", "money")
        if self.has("child.rating"):
            name, choices = self.rating_field()
            fields[name] = {
                "column": self.col("child.rating"),
                "parse": "enum",
                "values": self.value_map("child.rating", choices, "items"),
            }
        return fields

    def contractor(self) -> dict[str, Any] | None:
        spa = self.bp.smart_processes[0].code if self.bp.smart_processes else None
        if not spa or not self.has("contractor.title"):
            return None
        out = {"type": spa, "title": self.col("contractor.title")}
        if self.has("contractor.phone"):
            out["phone"] = self.col("contractor.phone")
        return out

    def children(self, title: str, contractor: bool) -> list[dict[str, Any]]:
        """The logistics estimate: the child of the link that feeds the contractor
        directory (else the first link from the pipeline), made when the logist or
        contractor column has a value; none when the sheet has neither. The blueprint's
        other links (the engineer's task) are not drafted: the logist's columns are not
        theirs, and the migration makes their children at their trigger, as sync would."""
        when = [self.col(r) for r in ("child.logist", "contractor.title") if self.has(r)]
        links = [link for link in self.bp.links if self.pipeline.code in link.parent.codes]
        if not when or not links:
            return []
        fed = {d.link for d in self.bp.directories}
        link = next((x for x in links if x.name in fed), links[0])
        return [
            {
                "link": link.name,
                "when": when,
                "title": f"{link.name}: {title}",
                "contractor": contractor,
                "fields": self.child_fields(),
            }
        ]

    def contact(self) -> Flow:
        return Flow(
            {
                key: self.col(f"contact.{key}")
                for key in ("name", "phone", "email", "company")
                if self.has(f"contact.{key}")
            }
        )


def draft_mapping(
    table: Table,
    bp: Blueprint,
    source: dict[str, Any],
    blueprint_ref: str,
    facts: PortalFacts | None = None,
) -> Draft:
    """The draft of a mapping for ``table``. ``blueprint_ref`` and the paths in ``source``
    are as the mapping file reads them (relative to its folder); ``facts``: the portal's
    users and sources (None: no portal, every user is TODO)."""
    d = _Drafter(table, bp, facts)
    mapping: dict[str, Any] = {
        "version": 1,
        "blueprint": blueprint_ref,
        "source": Flow(source),
        "originator": "legacy-sheet",
    }
    if d.has("row_id"):
        mapping["row_id"] = d.col("row_id")
    users = d.users()
    if users:
        mapping["users"] = users
    title = d.title()
    parent: dict[str, Any] = {"pipeline": d.pipeline.code}
    route = d.route()
    if route is not None:
        parent["route"] = route
    parent |= {"title": title, "stage": d.stage()}
    fields = d.parent_fields()
    if fields:
        parent["fields"] = fields
    mapping["parent"] = parent
    contact = d.contact()
    if contact:
        mapping["contact"] = contact
    contractor = d.contractor()
    if contractor is not None:
        mapping["contractor"] = Flow(contractor)
    children = d.children(title, contractor is not None)
    if children:
        mapping["children"] = children
    if d.has("comment"):
        mapping["comment"] = d.col("comment")
    return Draft(_text(mapping, d), d.notes, d.todos)


def _header(d: _Drafter) -> list[str]:
    used = {c.header for c in d.columns if c.role}
    if d.has("parent.route") and not route_pipelines(d.bp, d.pipeline):
        used.discard(d.col("parent.route"))
    unmapped = [
        c.header + (f" ({KIND_NAMES[c.profile.kind]})" if c.profile.kind in BY_CONTENT else "")
        for c in d.columns
        if c.header not in used
    ]
    lines = [
        "# Drafted by b24kit migrate init from the sheet's header and its values.",
        "# Replace every TODO (a user's id, the sheet words under TODO: move each under a code),",
        "# check each '# TODO' comment, then: b24kit migrate run THIS_FILE --portal P --dry-run",
        "# (migrate run refuses a mapping that still has a TODO, listing each with its line).",
    ]
    if unmapped:
        lines.append(
            comment_text(f"# Not mapped (map them by hand if they matter): {', '.join(unmapped)}")
        )
    return lines


def _text(mapping: dict[str, Any], d: _Drafter) -> str:
    """The mapping as YAML, children as a block list (the one list of mappings)."""
    children = mapping.pop("children", None)
    comment = mapping.pop("comment", None)
    lines = _header(d) + dump(mapping)
    if children:
        lines.append("children:")
        for child in children:
            body = dump(child, 2)
            lines.append("  - " + body[0].lstrip())
            lines += body[1:]
    if comment is not None:
        lines += dump({"comment": comment})
    return "\n".join(lines) + "\n"
