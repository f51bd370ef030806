"""One client is one entity (issue 10, item 3): the sheet's rows are grouped by every
identifier they share (phones, e-mails, INN, an organisation's name), transitively and
whatever the rows' order, before anything is written. A group gets all of its phones and
e-mails and one name; rows of one group that name the client differently are reported as
a conflict.

A client cell that names an organisation (ООО, АО, ИП, LLC... in any position, with or
without quotes) is a company; a person is a contact with a name split as the CRM has it.

Pure functions over the rows' identifiers: no portal, no mapping."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from b24kit.migrate.parsers import fold_lookalikes, normalize_word

# legal forms: abbreviations and the words they stand for, matched as whole words in any
# position («ООО АгроМир», «Монолит 255 ООО», «ИП Сидоров», "Acme, LLC")
FORMS = {
    "ооо": "ООО",
    "оао": "ОАО",
    "зао": "ЗАО",
    "пао": "ПАО",
    "нао": "НАО",
    "ао": "АО",
    "ип": "ИП",
    "ано": "АНО",
    "нко": "НКО",
    "гуп": "ГУП",
    "муп": "МУП",
    "фгуп": "ФГУП",
    "тоо": "ТОО",
    "пк": "ПК",
    "спк": "СПК",
    "кфх": "КФХ",
    "тсж": "ТСЖ",
    "снт": "СНТ",
    "гк": "ГК",
    "llc": "LLC",
    "ltd": "Ltd",
    "inc": "Inc",
    "gmbh": "GmbH",
    "jsc": "JSC",
    "llp": "LLP",
    "corp": "Corp",
    "plc": "PLC",
}
LONG_FORMS = {
    "общество с ограниченной ответственностью": "ООО",
    "индивидуальный предприниматель": "ИП",
    "публичное акционерное общество": "ПАО",
    "закрытое акционерное общество": "ЗАО",
    "открытое акционерное общество": "ОАО",
    "акционерное общество": "АО",
}
_QUOTES = "«»\"'“”„‘’`"
_NON_DIGIT = re.compile(r"\D")
_NON_WORD = re.compile(r"[^\w]+")
_TOKEN = re.compile(r"[^\s,;()]+")


def identifier(value: str) -> str:
    """The key a phone or an e-mail is compared by: a phone's digits, an e-mail lowercased."""
    return _NON_DIGIT.sub("", value) if value.startswith("+") else value.strip().lower()


def _plain(text: str) -> str:
    """Compared as: case-, space-, ё- and look-alike-insensitive («АгрoМир» with a Latin o)."""
    return normalize_word(text)


@dataclass(frozen=True)
class Organisation:
    form: str  # ООО, ИП, LLC...
    core: str  # the name without its form and quotes: «АгроМир»

    @cached_property  # a frozen dataclass still takes one: it writes the instance's __dict__
    def key(self) -> str:
        """What two spellings of one organisation share: «ООО АгроМир», «АгроМир ООО» and
        «ООО "Агромир"» are one."""
        core = _NON_WORD.sub(" ", _plain(self.core)).strip()
        return f"org:{self.form.lower()}:{core}"


# a pure function of the text, asked several times of every row (grouping, planning) with
# a sheet's few hundred names: remembered, as the same immutable Organisation
@lru_cache(maxsize=4096)
def organisation(name: str | None) -> Organisation | None:
    """The organisation a client cell names, or None for a person."""
    if not name:
        return None
    text = fold_lookalikes(" ".join(name.split()))  # «OOO АгроМир» typed with Latin O's
    lowered = _plain(text)
    for words, form in LONG_FORMS.items():
        at = lowered.find(words)
        if at >= 0:
            core = text[:at] + " " + text[at + len(words) :]
            return Organisation(form, _core(core)) if _core(core) else None
    tokens = _TOKEN.findall(text)
    for token in tokens:
        bare = token.strip(_QUOTES + ".").lower()
        if bare in FORMS:
            rest = re.sub(
                rf"(?<![\w]){re.escape(token)}(?![\w])", " ", text, count=1, flags=re.IGNORECASE
            )
            core = _core(rest)
            if core:
                return Organisation(FORMS[bare], core)
    return None


def _core(text: str) -> str:
    core = "".join(ch for ch in text if ch not in _QUOTES)
    return " ".join(core.split()).strip(" ,;-—:")


# a patronymic (Петрович, Ивановна, Ильинична, Кузьмич) and a surname's common endings
_PATRONYMIC = re.compile(r"(?:вич|вна|ична|инична|чна|ьич|мич|ьинична)$", re.IGNORECASE)
_SURNAME = re.compile(
    r"(?:ов|ев|ёв|ин|ын|ова|ева|ёва|ина|ына|ский|цкий|ская|цкая|ых|их|ко|ук|юк|швили|дзе|ян)$",
    re.IGNORECASE,
)
_INITIALS = re.compile(r"^(?:\w\.){1,2}$|^\w\.\w\.?$")
# common Russian given names: many end like surnames (Константин, Валентин; Ирина,
# Екатерина, Галина end in -ин/-ина), so «Ирина Смирнова» needs to know which word is the name
GIVEN_NAMES = set(
    [
        "александр",
        "алексей",
        "анатолий",
        "андрей",
        "антон",
        "аркадий",
        "арсений",
        "артем",
        "артур",
        "богдан",
        "борис",
        "вадим",
        "валентин",
        "валерий",
        "василий",
        "вениамин",
        "виктор",
        "виталий",
        "владимир",
        "владислав",
        "всеволод",
        "вячеслав",
        "геннадий",
        "георгий",
        "глеб",
        "григорий",
        "даниил",
        "данил",
        "денис",
        "дмитрий",
        "евгений",
        "егор",
        "захар",
        "иван",
        "игорь",
        "илья",
        "кирилл",
        "константин",
        "лев",
        "леонид",
        "максим",
        "марк",
        "матвей",
        "михаил",
        "никита",
        "николай",
        "олег",
        "павел",
        "петр",
        "роман",
        "руслан",
        "святослав",
        "семен",
        "сергей",
        "станислав",
        "степан",
        "тимофей",
        "тимур",
        "федор",
        "филипп",
        "эдуард",
        "юрий",
        "ярослав",
        "александра",
        "алена",
        "алина",
        "алла",
        "анастасия",
        "анна",
        "антонина",
        "валентина",
        "валерия",
        "вера",
        "вероника",
        "виктория",
        "галина",
        "дарья",
        "диана",
        "ева",
        "евгения",
        "екатерина",
        "елена",
        "елизавета",
        "жанна",
        "зинаида",
        "зоя",
        "инна",
        "ирина",
        "карина",
        "кристина",
        "ксения",
        "лариса",
        "лидия",
        "любовь",
        "людмила",
        "маргарита",
        "марина",
        "мария",
        "надежда",
        "наталья",
        "наталия",
        "нина",
        "оксана",
        "ольга",
        "полина",
        "раиса",
        "светлана",
        "софия",
        "софья",
        "тамара",
        "татьяна",
        "ульяна",
        "юлия",
        "яна",
    ]
)


def _given(word: str) -> bool:
    return word.lower().replace("ё", "е") in GIVEN_NAMES


def person_name(name: str | None) -> dict[str, str]:
    """A person's name as the CRM has it (LAST_NAME, NAME, SECOND_NAME):
    «Иванов Иван Петрович» -> Иванов / Иван / Петрович; «Иван Петрович Иванов» -> the same;
    «Иван Иванов» and «Ирина Смирнова» -> Иванов / Иван, Смирнова / Ирина (a common given
    name, else the surname by its ending, else the first word, as Russian sheets write it); «Иванов И.П.» -> Иванов / И.П.; one word is the NAME."""
    words = (name or "").split()
    out = {"NAME": "", "SECOND_NAME": "", "LAST_NAME": ""}
    if len(words) == 1:
        out["NAME"] = words[0]
    elif len(words) == 2:
        a, b = words
        if _INITIALS.match(a) and not _INITIALS.match(b):
            out.update(NAME=a, LAST_NAME=b)
        elif _PATRONYMIC.search(b) and not _INITIALS.match(b):
            out.update(NAME=a, SECOND_NAME=b)
        elif _given(a) != _given(b):  # «Ирина Смирнова», «Петров Константин»
            out.update(NAME=a, LAST_NAME=b) if _given(a) else out.update(NAME=b, LAST_NAME=a)
        elif _SURNAME.search(b) and not _SURNAME.search(a):
            out.update(NAME=a, LAST_NAME=b)
        else:
            out.update(LAST_NAME=a, NAME=b)
    elif len(words) == 3 and _PATRONYMIC.search(words[1]) and not _PATRONYMIC.search(words[2]):
        out.update(NAME=words[0], SECOND_NAME=words[1], LAST_NAME=words[2])
    elif len(words) == 3:
        out.update(LAST_NAME=words[0], NAME=words[1], SECOND_NAME=words[2])
    elif words:
        out.update(LAST_NAME=words[0], NAME=" ".join(words[1:]))
    return out


@dataclass
class Client:
    """A group of rows that are one client: an organisation (a company) when any of its
    rows names one, else a person (a contact)."""

    key: str  # the group's smallest identifier (or its first row's id): stable in any order
    rows: list[str]  # row ids, in sheet order
    names: Counter[str] = field(default_factory=Counter)  # the client's name -> rows
    phones: list[str] = field(default_factory=list)  # E.164, sorted
    emails: list[str] = field(default_factory=list)  # lowercased, sorted
    inns: list[str] = field(default_factory=list)
    orgs: Counter[str] = field(default_factory=Counter)  # organisation names -> rows
    # row id -> the person the row names (the contact person of an organisation)
    persons: dict[str, str] = field(default_factory=dict)

    @property
    def identifiers(self) -> list[str]:
        ids = [identifier(v) for v in (*self.phones, *self.emails)]
        ids += [f"inn:{i}" for i in self.inns]
        if not self.orgs:
            return ids
        org = organisation(self.name)
        # an organisation without a legal form (a company column: «Стройтрест») by its name
        return [*ids, org.key if org else f"org::{_plain(self.name or '')}"]

    @property
    def is_organisation(self) -> bool:
        return bool(self.orgs)

    @property
    def name(self) -> str | None:
        """The name most rows give (the organisation's, for one); on a tie the first in
        alphabetical order (never the first row's, which would depend on the order)."""
        names = self.orgs or self.names
        if not names:
            return None
        best = max(names.values())
        return min(n for n, count in names.items() if count == best)

    @property
    def conflict(self) -> str | None:
        """Two or more different INNs or names for one client, in words. Two INNs are two
        legal entities that share a name, a phone or an e-mail here: grouped as one, and
        said so (the rows to check, with the INNs)."""
        if len(self.inns) > 1:
            names = ", ".join(f"«{n}»" for n in sorted(self.orgs or self.names)) or self.key
            inns = ", ".join(self.inns)
            return f"one client {names} with {len(self.inns)} INNs ({inns}): two companies?"
        if self.orgs:
            distinct = {(organisation(n) or Organisation("", n)).key for n in self.orgs}
            shown_names = self.orgs
        else:
            distinct = {_plain(n) for n in self.names}
            shown_names = self.names
        if len(distinct) < 2:
            return None
        shown = ", ".join(f"«{n}»" for n in sorted(shown_names))
        ids = self.phones + self.emails + [f"ИНН {i}" for i in self.inns]
        return f"one client ({', '.join(ids) or self.key}) named {shown}"


class _Sets:
    """Union-find over identifiers."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:  # path compression
            self.parent[item], item = root, self.parent[item]
        return root

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)  # the smaller one leads: order-free


@dataclass(frozen=True)
class ClientRow:
    """What a row says about its client: its name (a person or an organisation), the
    organisation named in a column of its own, the contact person, phones, e-mails, INN."""

    row_id: str
    name: str | None
    phones: tuple[str, ...]
    emails: tuple[str, ...]
    company: str | None = None
    person: str | None = None
    inn: str | None = None

    @property
    def org(self) -> str | None:
        """The organisation the row names: its company column, or a client name that is one."""
        if self.company:
            return self.company.strip()
        if self.name and organisation(self.name):
            return self.name.strip()
        return None

    @property
    def contact_person(self) -> str | None:
        """The person the row names: the person column, or a client name that is no
        organisation."""
        if self.person:
            return self.person.strip()
        if self.name and self.name.strip() != (self.org or ""):
            return self.name.strip()
        return None

    def identifiers(self) -> list[str]:
        ids = [identifier(v) for v in (*self.phones, *self.emails)]
        if self.inn:
            ids.append(f"inn:{self.inn}")
        org = self.org
        if org:
            found = organisation(org)
            ids.append(found.key if found else f"org::{_plain(org)}")
        return ids


def group_clients(rows: Iterable[ClientRow]) -> dict[str, Client]:
    """Row id -> its client. Rows sharing a phone, an e-mail, an INN or an organisation's
    name, directly or through other rows, are one client; a row with none of them is a
    client of its own."""
    keyed = [(row, row.identifiers() or [f"row:{row.row_id}"]) for row in rows]
    sets = _Sets()
    for _, ids in keyed:
        for other in ids[1:]:
            sets.join(ids[0], other)
        sets.find(ids[0])
    clients: dict[str, Client] = {}
    by_row: dict[str, Client] = {}
    for row, ids in keyed:
        root = sets.find(ids[0])
        client = clients.setdefault(root, Client(root, []))
        client.rows.append(row.row_id)
        org, person = row.org, row.contact_person
        if org:
            client.orgs[" ".join(org.split())] += 1  # «ООО\xa0АгроМир» is «ООО АгроМир»
        if person:
            client.persons[row.row_id] = person
            client.names[" ".join(person.split())] += 1
        client.phones = sorted({*client.phones, *row.phones})
        client.emails = sorted({*client.emails, *(e.lower() for e in row.emails)})
        if row.inn:
            client.inns = sorted({*client.inns, row.inn})
        by_row[row.row_id] = client
    for client in clients.values():
        _no_person_named_as_the_organisation(client)
    return by_row


def _no_person_named_as_the_organisation(client: Client) -> None:
    """«Ромашка» on a row of «ООО Ромашка»'s phone is the organisation written short, not
    a contact person named «Ромашка» (who was made, and set on the deals)."""
    cores = {_plain(found.core) for name in client.orgs if (found := organisation(name))}
    for row_id, person in list(client.persons.items()):
        if _plain(person) in cores:
            del client.persons[row_id]
            spaced = " ".join(person.split())
            client.names[spaced] -= 1
            if client.names[spaced] <= 0:
                del client.names[spaced]
