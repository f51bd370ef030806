"""One client per client (issue 10, item 3): rows grouped by every phone and e-mail they
share, transitively and in any order; the group has all of them and one name; different
names for one client are a conflict to report."""

from __future__ import annotations

import random

from b24kit.migrate.clients import ClientRow, group_clients
from b24kit.migrate.plan import Existing, plan_migration, read_records
from tests.test_migrate_unit import MAPPING, TARGET, table

ROWS = [
    ClientRow("1", "Иванов Иван", ("+79261112233",), ()),
    ClientRow("2", "Иванов И.", ("+79035556677",), ("ivanov@mail.ru",)),
    ClientRow("3", "Иванов Иван", ("+79261112233", "+79035556677"), ()),  # joins 1 and 2
    ClientRow("4", "Петров", (), ("IVANOV@mail.ru", "petrov@mail.ru")),  # through 2's e-mail
    ClientRow("5", "Сидоров", ("+79160000000",), ()),
    ClientRow("6", None, (), ()),
    ClientRow("7", "Сидоров", ("+79160000000",), ()),
]


def groups(rows: list[ClientRow]) -> list[tuple[str, ...]]:
    clients = group_clients(rows)
    return sorted({tuple(sorted(c.rows)) for c in clients.values()})


def test_rows_sharing_any_identifier_are_one_client_transitively() -> None:
    assert groups(ROWS) == [("1", "2", "3", "4"), ("5", "7"), ("6",)]
    ivanov = group_clients(ROWS)["1"]
    assert ivanov.phones == ["+79035556677", "+79261112233"], "every phone of the group"
    assert ivanov.emails == ["ivanov@mail.ru", "petrov@mail.ru"], "every e-mail, once"


def test_the_grouping_and_the_names_do_not_depend_on_row_order() -> None:
    expected = group_clients(ROWS)
    for seed in range(20):
        shuffled = ROWS[:]
        random.Random(seed).shuffle(shuffled)
        got = group_clients(shuffled)
        for row in ROWS:
            a, b = expected[row.row_id], got[row.row_id]
            assert (a.key, a.name, a.phones, a.emails) == (b.key, b.name, b.phones, b.emails)
            assert sorted(a.rows) == sorted(b.rows)


def test_one_client_with_two_names_is_a_conflict_and_the_commonest_name_wins() -> None:
    ivanov = group_clients(ROWS)["4"]
    assert ivanov.name == "Иванов Иван", "two rows say so"
    assert ivanov.conflict is not None and "«Петров»" in ivanov.conflict
    assert group_clients(ROWS)["5"].conflict is None, "the same name twice is no conflict"


def test_one_company_name_with_two_inns_is_a_conflict() -> None:
    """Two legal entities that share a name (ООО «Стройсервис» in Moscow and in Kazan,
    each with its own valid INN) were grouped as one company, silently; the group is
    still one (rows sharing a name are one client), and the dry run now warns, naming
    both INNs."""
    rows = [
        ClientRow("1", "ООО Стройсервис", ("+79001112233",), (), inn="7707083893"),
        ClientRow("2", 'ООО "Стройсервис"', ("+78432223344",), (), inn="1655000010"),
        ClientRow("3", "ООО Стройсервис", ("+79001112233",), (), inn="7707083893"),
    ]
    client = group_clients(rows)["2"]
    assert client.conflict is not None
    assert "2 INNs (1655000010, 7707083893): two companies?" in client.conflict
    same = [ClientRow("1", "ООО Ромашка", (), (), inn="7707083893")] * 2
    assert group_clients(same)["1"].conflict is None, "one INN twice is no conflict"


def test_an_organisation_written_short_is_no_contact_person() -> None:
    """«Ромашка» on the phone of «ООО Ромашка» was made a contact person named «Ромашка»
    and set on the deals; it is the organisation written without its legal form."""
    rows = [
        ClientRow("1", "ООО Ромашка", ("+79001112233",), ()),
        ClientRow("2", "Ромашка", ("+79001112233",), ()),
        ClientRow("3", "Иван Петров", ("+79001112233",), ()),
    ]
    client = group_clients(rows)["2"]
    assert client.is_organisation and client.name == "ООО Ромашка"
    assert client.persons == {"3": "Иван Петров"}, "a real person stays the contact"
    assert client.conflict is None


def test_the_planner_makes_one_contact_per_client_with_all_its_identifiers() -> None:
    """A row joined the first contact sharing any phone, which never gained the row's
    other phones; now the group is one contact made with all of them, whichever row
    comes first, and a conflict of names is a warning in the dry run."""
    rows = [
        [1, "Иванов Иван", "+7 926 111-22-33", "кран", "новая", "100", ""],
        [2, "Иванов Иван", "+7 926 111-22-33; +7 903 555-66-77", "щебень", "новая", "100", ""],
        [3, "Ваня", "+7 903 555-66-77", "песок", "новая", "100", ""],
    ]
    for order in (rows, rows[::-1]):
        records, _ = read_records(table(*order), MAPPING)
        plan = plan_migration(records, MAPPING, TARGET, Existing())
        contacts = [c for c in plan.commands if c.method == "crm.contact.add"]
        assert len(contacts) == 1, "one client, one contact"
        fields = contacts[0].params["fields"]
        assert [p["VALUE"] for p in fields["PHONE"]] == ["+79035556677", "+79261112233"]
        assert (fields["LAST_NAME"], fields["NAME"]) == ("Иванов", "Иван")
        assert fields["ORIGIN_ID"] == "contact:79035556677", "the same key in any order"
        parents = [
            c
            for c in plan.commands
            if c.method == "crm.deal.add" and "CONTACT_ID" in c.params["fields"]
        ]
        assert {p.params["fields"]["CONTACT_ID"].command for p in parents} == {contacts[0].name}
        [warning] = plan.findings
        assert "named «Ваня», «Иванов Иван»" in warning.reason


def test_an_existing_client_gains_the_phone_it_lacks_instead_of_a_second_contact() -> None:
    """Issue 10, item 5's first edit: a new phone in the sheet made a second contact and
    moved the deals to it."""
    records, _ = read_records(
        table([1, "Иванов Иван", "+7 926 111-22-33, +7 903 555-66-77", "кран", "новая", "100", ""]),
        MAPPING,
    )
    existing = Existing(contacts_by_comm={"79261112233": 5})
    plan = plan_migration(records, MAPPING, TARGET, existing)
    assert not [c for c in plan.commands if c.method == "crm.contact.add"]
    [update] = [c for c in plan.commands if c.method == "crm.contact.update"]
    assert update.params == {
        "id": 5,
        "fields": {"PHONE": [{"VALUE": "+79035556677", "VALUE_TYPE": "WORK"}]},
    }
    parent = next(c for c in plan.commands if c.method == "crm.deal.add")
    assert parent.params["fields"]["CONTACT_ID"] == 5, "the deal stays with its client"
    again = plan_migration(
        records, MAPPING, TARGET, Existing(contacts_by_comm={"79261112233": 5, "79035556677": 5})
    )
    assert not [c for c in again.commands if c.method.startswith("crm.contact.")]


def test_a_renamed_client_renames_the_contact_b24kit_made_and_no_other() -> None:
    """Issue 10, item 5: a renamed client renamed the deal but not the client."""
    records, _ = read_records(
        table([1, "Иванова Анна Петровна", "+7 926 111-22-33", "кран", "новая", "100", ""]),
        MAPPING,
    )
    ours = Existing(
        contacts_by_comm={"79261112233": 5},
        contacts={5: {"NAME": "Анна", "LAST_NAME": "Петрова", "ORIGINATOR_ID": "legacy"}},
    )
    [update] = [
        c
        for c in plan_migration(records, MAPPING, TARGET, ours).commands
        if c.method == "crm.contact.update"
    ]
    assert update.params == {
        "id": 5,
        "fields": {"NAME": "Анна", "SECOND_NAME": "Петровна", "LAST_NAME": "Иванова"},
    }
    theirs = Existing(
        contacts_by_comm={"79261112233": 5},
        contacts={5: {"NAME": "Анна", "LAST_NAME": "Петрова", "ORIGINATOR_ID": None}},
    )
    plan = plan_migration(records, MAPPING, TARGET, theirs)
    assert not [c for c in plan.commands if c.method == "crm.contact.update"], (
        "a contact someone made by hand keeps its name"
    )
    done = Existing(
        contacts_by_comm={"79261112233": 5},
        contacts={
            5: {
                "NAME": "Анна",
                "SECOND_NAME": "Петровна",
                "LAST_NAME": "Иванова",
                "ORIGINATOR_ID": "legacy",
            }
        },
    )
    plan = plan_migration(records, MAPPING, TARGET, done)
    assert not [c for c in plan.commands if c.method == "crm.contact.update"], "once"
