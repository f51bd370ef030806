"""Clients as the CRM has them (issue 10, item 3): a client cell naming an organisation
(ООО, ИП, LLC..., in any position, with quotes) is a company with the contact person as
its contact; a person is a contact with a sensibly split name; one organisation spelled
three ways, or sharing an INN, is one client in any row order."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from b24kit.client.executor import Ref
from b24kit.migrate.clients import ClientRow, group_clients, organisation, person_name
from b24kit.migrate.mapping import Mapping
from b24kit.migrate.parsers import ParseError, parse_inn
from b24kit.migrate.plan import Existing, plan_migration, read_records
from b24kit.migrate.sources import Grid, to_table
from tests.test_migrate_unit import MAPPING, TARGET

ORGANISATIONS = [
    ("ООО АгроМир", "ООО", "АгроМир"),
    ("ООО «АгроМир»", "ООО", "АгроМир"),
    ('ООО "Агромир"', "ООО", "Агромир"),
    ("АгроМир, ООО", "ООО", "АгроМир"),
    ("Монолит 255 ООО", "ООО", "Монолит 255"),
    ("ИП Сидоров", "ИП", "Сидоров"),
    ("ип Сидоров И.И.", "ИП", "Сидоров И.И."),
    ("ЗАО «Тяжмаш»", "ЗАО", "Тяжмаш"),
    ("ОАО РЖД", "ОАО", "РЖД"),
    ("ПАО Сбербанк", "ПАО", "Сбербанк"),
    ("АО «Вектор»", "АО", "Вектор"),
    ("СПК Нива", "СПК", "Нива"),
    ("Acme, LLC", "LLC", "Acme"),
    ("Northwind Ltd.", "Ltd", "Northwind"),
    ("Общество с ограниченной ответственностью «Ромашка»", "ООО", "Ромашка"),
    ("Индивидуальный предприниматель Петров П.П.", "ИП", "Петров П.П."),
    ("  ООО   Тяж  маш ", "ООО", "Тяж маш"),
    ("OOO АгроМир", "ООО", "АгроМир"),  # the form typed in Latin letters
    ("AO «Вектор»", "АО", "Вектор"),
]
PERSONS = [
    "Иванов Иван",
    "Аошкин Пётр",  # begins with АО, is no АО
    "Ипатов",
    "Иван Сидоров",
    "Оооленко Мария",
    "Стройтрест",  # an organisation without a form: the sheet cannot tell; a contact
    "ООО",  # a form with no name is no organisation
    "",
]


@pytest.mark.parametrize(("cell", "form", "core"), ORGANISATIONS)
def test_an_organisation_is_recognised_by_its_legal_form_anywhere(
    cell: str, form: str, core: str
) -> None:
    found = organisation(cell)
    assert found is not None, cell
    assert (found.form, found.core) == (form, core)


@pytest.mark.parametrize("cell", PERSONS)
def test_a_person_is_no_organisation(cell: str) -> None:
    assert organisation(cell) is None


def test_one_organisation_spelled_three_ways_has_one_key() -> None:
    keys = {organisation(n).key for n in ("ООО АгроМир", "АгроМир ООО", 'ООО "Агромир"')}  # type: ignore[union-attr]
    assert keys == {"org:ооо:агромир"}
    assert organisation("АО АгроМир").key != "org:ооо:агромир", "another form, another entity"  # type: ignore[union-attr]
    latin = {organisation(n).key for n in ("ООО АгрoМир", "OOO АгроМир", "ООО\xa0АгроМир")}  # type: ignore[union-attr]
    assert latin == {"org:ооо:агромир"}, "Latin look-alikes and a no-break space too"


@pytest.mark.parametrize(
    ("name", "last", "first", "second"),
    [
        ("Иванов Иван Петрович", "Иванов", "Иван", "Петрович"),
        ("Иван Петрович Иванов", "Иванов", "Иван", "Петрович"),
        ("Иванова Анна Сергеевна", "Иванова", "Анна", "Сергеевна"),
        ("Иванов Иван", "Иванов", "Иван", ""),
        ("Иван Иванов", "Иванов", "Иван", ""),
        ("Мария Кузнецова", "Кузнецова", "Мария", ""),
        ("Иванов И.П.", "Иванов", "И.П.", ""),
        ("И.П. Иванов", "Иванов", "И.П.", ""),
        ("Анна Петровна", "", "Анна", "Петровна"),
        ("Анна", "", "Анна", ""),
        # given names that end like surnames (-ин, -ина): the name is the given one
        ("Ирина Смирнова", "Смирнова", "Ирина", ""),
        ("Смирнова Ирина", "Смирнова", "Ирина", ""),
        ("Константин Петров", "Петров", "Константин", ""),
        ("Петров Константин", "Петров", "Константин", ""),
        ("Екатерина Ильина", "Ильина", "Екатерина", ""),
        ("Валентин Ильин", "Ильин", "Валентин", ""),
        ("Галина Андреевна Лебедева", "Лебедева", "Галина", "Андреевна"),
    ],
)
def test_a_person_s_name_is_split_as_the_crm_has_it(
    name: str, last: str, first: str, second: str
) -> None:
    assert person_name(name) == {"LAST_NAME": last, "NAME": first, "SECOND_NAME": second}


def test_inn_grammar() -> None:
    assert parse_inn("7707083893").value == "7707083893"
    assert parse_inn("77 0708 3893").value == "7707083893", "spaces allowed"
    assert parse_inn(500100732259).value == "500100732259", "a number cell, 12 digits"
    assert parse_inn("7707083890").warning, "a wrong check digit is a warning"
    for bad in ("12345", "77070838931", "ИНН", "7707o83893"):
        with pytest.raises(ParseError):
            parse_inn(bad)


ROWS = [
    ClientRow("1", "ООО АгроМир", ("+79001112233",), (), person="Петров Пётр"),
    ClientRow("2", "АгроМир ООО", ("+79004445566",), ()),  # the same by its name only
    ClientRow("3", 'ООО "Агромир"', (), ("agro@mir.ru",), person="Сидорова Анна"),
    ClientRow("4", "ИП Сидоров", (), (), inn="500100732259"),
    ClientRow("5", "Сидоров Иван", (), (), inn="500100732259"),  # the same ИП by INN
    ClientRow("6", "Петров Пётр", ("+79001112233",), ()),  # a person on АгроМир's phone
    ClientRow("7", "Иванов Иван", ("+79160000000",), ()),
]


def test_organisations_group_by_name_phone_and_inn_in_any_order() -> None:
    def shape(rows: list[ClientRow]) -> list[tuple[str, ...]]:
        clients = group_clients(rows)
        return sorted({tuple(sorted(c.rows)) for c in clients.values()})

    expected = [("1", "2", "3", "6"), ("4", "5"), ("7",)]
    rng = random.Random(7)
    for _ in range(20):
        rows = ROWS[:]
        rng.shuffle(rows)
        assert shape(rows) == expected
        clients = group_clients(rows)
        agro = clients["1"]
        assert agro.is_organisation and agro.name == "АгроМир ООО", "a tie: A-Z"
        assert agro.phones == ["+79001112233", "+79004445566"]
        assert agro.persons == {"1": "Петров Пётр", "3": "Сидорова Анна", "6": "Петров Пётр"}
        assert agro.conflict is None, "three spellings of one organisation are no conflict"
        assert clients["4"].is_organisation and clients["4"].inns == ["500100732259"]
        assert not clients["7"].is_organisation


def test_two_organisations_on_one_phone_are_a_conflict() -> None:
    clients = group_clients(
        [
            ClientRow("1", "ООО АгроМир", ("+79001112233",), ()),
            ClientRow("2", "ООО Вектор", ("+79001112233",), ()),
        ]
    )
    assert clients["1"].conflict and "«ООО АгроМир», «ООО Вектор»" in clients["1"].conflict


HEADER = ["№", "Клиент", "Контактное лицо", "ИНН", "Телефон", "Груз", "Статус", "Цена", "Логист"]
COMPANY_MAPPING = Mapping.model_validate(
    {
        **MAPPING.model_dump(exclude_none=True),
        "contact": {
            "name": "Клиент",
            "person": "Контактное лицо",
            "inn": "ИНН",
            "phone": "Телефон",
        },
    }
)


def company_table(*rows: list[Any]) -> Any:
    return to_table(Grid("s.csv", "s", [HEADER, *[list(r) for r in rows]]))


def test_the_planner_makes_a_company_with_its_contact_person() -> None:
    rows = [
        [1, "ООО «АгроМир»", "Петров Пётр Ильич", "", "+7 900 111-22-33", "кран", "новая", "1", ""],
        [2, "АгроМир ООО", "", "", "+7 900 444-55-66", "щебень", "новая", "2", ""],
        [3, "Иванов Иван", "", "", "+7 916 000-00-00", "песок", "новая", "3", ""],
        [4, "ИП Сидоров", "", "500100732259", "", "лес", "новая", "4", ""],
    ]
    records, findings = read_records(company_table(*rows), COMPANY_MAPPING)
    assert [f.reason for f in findings] == []
    plan = plan_migration(records, COMPANY_MAPPING, TARGET, Existing())
    companies = [c for c in plan.commands if c.method == "crm.company.add"]
    contacts = [c for c in plan.commands if c.method == "crm.contact.add"]
    assert [c.params["fields"]["TITLE"] for c in companies] == [
        "АгроМир ООО",
        "ИП Сидоров",
    ]  # a tie: A-Z
    agro = companies[0].params["fields"]
    assert [p["VALUE"] for p in agro["PHONE"]] == ["+79001112233", "+79004445566"]
    assert agro["ORIGIN_ID"] == "company:79001112233"
    assert agro["ORIGINATOR_ID"] == "legacy"
    person, ivanov = (c.params["fields"] for c in contacts)
    assert (person["LAST_NAME"], person["NAME"], person["SECOND_NAME"]) == (
        "Петров",
        "Пётр",
        "Ильич",
    )
    assert person["COMPANY_ID"] == Ref(companies[0].name), "the person works for the company"
    assert "PHONE" not in person, "the client's phones are the company's"
    assert (ivanov["LAST_NAME"], ivanov["NAME"]) == ("Иванов", "Иван")
    deals = {
        c.params["fields"]["ORIGIN_ID"]: c.params["fields"]
        for c in plan.commands
        if c.method == "crm.deal.add"
    }
    assert deals["row:1"]["COMPANY_ID"] == Ref(companies[0].name)
    assert deals["row:1"]["CONTACT_ID"] == Ref(contacts[0].name)
    assert deals["row:2"]["COMPANY_ID"] == Ref(companies[0].name)
    assert "CONTACT_ID" not in deals["row:2"], "no person named on row 2"
    assert deals["row:3"]["CONTACT_ID"] == Ref(contacts[1].name)
    assert "COMPANY_ID" not in deals["row:3"]
    assert deals["row:4"]["COMPANY_ID"] == Ref(companies[1].name)
    assert plan.counts["companies"] == {"created": 2, "updated": 0, "unchanged": 0}
    assert plan.counts["contacts"]["created"] == 2


def test_a_bad_inn_rejects_the_row_naming_the_cell() -> None:
    records, findings = read_records(
        company_table([1, "ИП Сидоров", "", "12345", "", "лес", "новая", "4", ""]),
        COMPANY_MAPPING,
    )
    assert records == []
    [finding] = findings
    assert (finding.column, finding.value) == ("ИНН", "12345")
    assert "10 or 12 digits" in finding.reason


def test_an_existing_company_gains_phones_and_keeps_its_person(tmp_path: Path) -> None:
    records, _ = read_records(
        company_table(
            [
                1,
                "ООО АгроМир",
                "Петров Пётр",
                "",
                "+7 900 111-22-33, +7 900 999-88-77",
                "к",
                "",
                "",
                "",
            ]
        ),
        COMPANY_MAPPING,
    )
    existing = Existing(
        companies_by_key={"79001112233": 40},
        companies={40: {"TITLE": "ООО АгроМир", "ORIGINATOR_ID": "legacy"}},
        persons={(40, "петр петров"): 41},
    )
    plan = plan_migration(records, COMPANY_MAPPING, TARGET, existing)
    [update] = [c for c in plan.commands if c.method.startswith("crm.company.")]
    assert update.method == "crm.company.update"
    assert update.params == {
        "id": 40,
        "fields": {"PHONE": [{"VALUE": "+79009998877", "VALUE_TYPE": "WORK"}]},
    }
    assert not [c for c in plan.commands if c.method.startswith("crm.contact.")]
    deal = next(c for c in plan.commands if c.method == "crm.deal.add").params["fields"]
    assert (deal["COMPANY_ID"], deal["CONTACT_ID"]) == (40, 41)


def test_a_client_s_name_is_the_spelling_most_rows_give_whatever_the_spaces() -> None:
    """«ООО\xa0АгроМир» and «ООО АгроМир » are the spelling «ООО АгроМир» (counted once
    with it), not a third one that lets «АгроМир ООО» win."""
    rows = [
        ClientRow("1", "ООО\xa0АгроМир", (), ()),
        ClientRow("2", "ООО АгроМир ", (), ()),
        ClientRow("3", "АгроМир ООО", (), ()),
        ClientRow("4", "АгроМир ООО", (), ()),
        ClientRow("5", "ООО  АгроМир", (), ()),
    ]
    assert group_clients(rows)["1"].name == "ООО АгроМир"
    people = [
        ClientRow("1", "Иван  Иванов", ("+79001112233",), ()),
        ClientRow("2", "Иван Иванов", ("+79001112233",), ()),
        ClientRow("3", "Иванов Иван Петрович", ("+79001112233",), ()),
    ]
    assert group_clients(people)["3"].name == "Иван Иванов"


def test_a_company_without_a_legal_form_is_found_again_by_its_key() -> None:
    """A reviewer's find: a company column's «Стройтрест» (no ООО, no phone) was made
    again on every run: it had no identifier and was never looked up by its key."""
    mapping = Mapping.model_validate(
        {
            **MAPPING.model_dump(exclude_none=True),
            "contact": {"company": "Клиент", "person": "Контактное лицо", "phone": "Телефон"},
        }
    )
    row = [1, "Стройтрест", "Иван Петров", "", "", "кран", "новая", "1", ""]
    records, _ = read_records(company_table(row), mapping)
    first = plan_migration(records, mapping, TARGET, Existing())
    [made] = [c for c in first.commands if c.method == "crm.company.add"]
    key = made.params["fields"]["ORIGIN_ID"]
    assert key == "company:org::стройтрест"
    again = plan_migration(
        records,
        mapping,
        TARGET,
        Existing(
            companies_by_origin={key: 40},
            companies={40: {"TITLE": "Стройтрест", "ORIGINATOR_ID": "legacy"}},
            persons={(40, "иван петров"): 41},
        ),
    )
    assert not [c for c in again.commands if c.method.endswith(".add") and "company" in c.method]
    assert not [c for c in again.commands if c.method == "crm.contact.add"]


def test_a_client_known_by_name_alone_keeps_its_contact_when_a_phone_comes() -> None:
    """A reviewer's find: a contact made for a name-only row (key row:<id>) was not found
    once the sheet gave a phone (the key became the phone), so a second contact was made
    and the deal moved to it."""
    records, _ = read_records(
        company_table([2, "Сидоров Пётр", "", "", "+7 912 000-11-22", "к", "новая", "1", ""]),
        COMPANY_MAPPING,
    )
    existing = Existing(
        contacts_by_origin={"contact:row:2": 7},
        contacts={7: {"NAME": "Пётр", "LAST_NAME": "Сидоров", "ORIGINATOR_ID": "legacy"}},
    )
    plan = plan_migration(records, COMPANY_MAPPING, TARGET, existing)
    assert not [c for c in plan.commands if c.method == "crm.contact.add"]
    [update] = [c for c in plan.commands if c.method == "crm.contact.update"]
    assert update.params["id"] == 7
    assert update.params["fields"]["PHONE"] == [{"VALUE": "+79120001122", "VALUE_TYPE": "WORK"}]
    deal = next(c for c in plan.commands if c.method == "crm.deal.add").params["fields"]
    assert deal["CONTACT_ID"] == 7
