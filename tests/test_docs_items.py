"""crm.deal.*, crm.contact.*, crm.company.*, crm.deal.contact.items.* and crm.item.* against
the official REST docs (api-reference/crm/...) and fast_bitrix24's recorded real answers."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from b24kit.sandbox import Sandbox
from tests.conftest import Rest, call_error

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


@pytest.fixture
def plus2() -> Iterator[Sandbox]:
    """A portal at +02:00, the offset of the docs' examples."""
    box = Sandbox(limits="off", timezone="+02:00")
    yield box
    box.close()


# ------------------------------------------------------------------ crm.deal.*


def test_deal_add_defaults(api: Sandbox) -> None:
    deal_id = api.call("crm.deal.add", {"fields": {"TITLE": "d"}})
    assert isinstance(deal_id, int), "crm-deal-add.md: result is the new deal's integer id"
    deal = api.call("crm.deal.get", {"id": deal_id})
    first_type = api.call(
        "crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "DEAL_TYPE"}}
    )[0]
    first_source = api.call(
        "crm.status.list", {"order": {"SORT": "ASC"}, "filter": {"ENTITY_ID": "SOURCE"}}
    )[0]
    assert deal["TYPE_ID"] == first_type["STATUS_ID"] == "SALE", (
        "crm-deal-add.md: TYPE_ID defaults to the first available deal type"
    )
    assert deal["SOURCE_ID"] == first_source["STATUS_ID"] == "CALL", (
        "crm-deal-add.md: SOURCE_ID defaults to the first available source"
    )
    for flag in (
        "IS_RECURRING",
        "IS_RETURN_CUSTOMER",
        "IS_REPEATED_APPROACH",
        "IS_MANUAL_OPPORTUNITY",
        "CLOSED",
    ):
        assert deal[flag] == "N", f"crm-deal-add.md: {flag} defaults to N"
    assert deal["OPENED"] == "Y", "crm-deal-add.md: OPENED defaults to Y"
    assert (deal["OPPORTUNITY"], deal["TAX_VALUE"]) == ("0.00", "0.00"), (
        "crm-deal-add.md: OPPORTUNITY and TAX_VALUE default to 0.00 (strings in crm-deal-get.md)"
    )


def test_deal_get_value_shapes(plus2: Sandbox) -> None:
    deal_id = plus2.call(
        "crm.deal.add",
        {
            "fields": {
                "TITLE": "New Deal #1",
                "PROBABILITY": 99,
                "OPPORTUNITY": 1000000,
                "BEGINDATE": "2024-08-30",
                "CLOSEDATE": "2024-09-09T10:00:00+02:00",
            }
        },
    )
    deal = plus2.call("crm.deal.get", {"id": deal_id})
    assert deal["ID"] == str(deal_id) and deal["PROBABILITY"] == "99", (
        'crm-deal-get.md: integers are strings ("ID": "410", "PROBABILITY": "99")'
    )
    assert deal["OPPORTUNITY"] == "1000000.00", 'crm-deal-get.md: "OPPORTUNITY": "1000000.00"'
    assert deal["LEAD_ID"] is None and deal["QUOTE_ID"] is None, (
        'crm-deal-get.md: an empty link is null ("LEAD_ID": null, "QUOTE_ID": null)'
    )
    assert deal["BEGINDATE"] == "2024-08-30T02:00:00+02:00", (
        'crm-deal-get.md: a date-only field reads "2024-08-30T02:00:00+02:00"'
    )
    assert deal["CLOSEDATE"] == "2024-09-09T02:00:00+02:00", (
        'crm-deal-get.md: CLOSEDATE is date-only too ("2024-09-09T02:00:00+02:00")'
    )
    assert ISO.match(deal["DATE_CREATE"]) and deal["DATE_CREATE"].endswith("+02:00"), (
        "crm-deal-get.md: DATE_CREATE is ISO 8601 with the portal's offset"
    )
    found = plus2.call(
        "crm.deal.list", {"filter": {"BEGINDATE": deal["BEGINDATE"]}, "select": ["ID"]}
    )
    assert [r["ID"] for r in found] == [str(deal_id)], (
        "crm-deal-list.md: a date read back filters the deal it came from"
    )


def test_deal_errors(api: Sandbox) -> None:
    err = call_error(api, "crm.deal.get", {})
    assert (err.code, err.description, err.status) == ("", "ID is not defined or invalid.", 400), (
        "crm-deal-get.md: empty code, ID is not defined or invalid, HTTP 400"
    )
    err = call_error(api, "crm.deal.get", {"id": 999})
    assert (err.code, err.description) == ("", "Not found"), "crm-deal-get.md: Not found"
    err = call_error(api, "crm.deal.delete", {"id": 999})
    assert (err.code, err.description) == ("", "Not found"), "crm-deal-delete.md: Not found"
    err = call_error(api, "crm.deal.update", {"id": 999, "fields": {"TITLE": "x"}})
    assert err.description == "Not found", "crm-deal-update.md: Not found"
    err = call_error(api, "crm.deal.add", {"fields": "x"})
    assert err.description == "Parameter 'fields' must be array.", (
        "crm-deal-add.md: Parameter 'fields' must be array."
    )
    err = call_error(api, "crm.deal.list", {"filter": "x"})
    assert (err.code, err.description) == ("", "Parameter 'filter' must be array."), (
        "crm-deal-list.md: Parameter 'filter' must be array."
    )
    err = call_error(api, "crm.deal.list", {"order": "x"})
    assert err.description == "Parameter 'order' must be array.", (
        "crm-deal-list.md: Parameter 'order' must be array."
    )
    err = call_error(api, "crm.deal.add", {"fields": {"CURRENCY_ID": "XXX"}})
    assert err.description == 'Invalid value for the "Currency" field', (
        'crm-deal-add.md: Invalid value for the "Currency" field'
    )


def test_deal_list_ignores_contact_ids(api: Sandbox) -> None:
    contact = api.call("crm.contact.add", {"fields": {"NAME": "A"}})
    with_contact = api.call("crm.deal.add", {"fields": {"CONTACT_IDS": [contact]}})
    api.call("crm.deal.add", {"fields": {}})
    rows = api.call(
        "crm.deal.list", {"filter": {"CONTACT_IDS": [contact]}, "select": ["ID", "CONTACT_IDS"]}
    )
    assert len(rows) == 2, "crm-deal-list.md: the filter does not support CONTACT_IDS"
    assert "CONTACT_IDS" not in rows[0], "crm-deal-list.md: select does not support CONTACT_IDS"
    item = api.call("crm.item.get", {"entityTypeId": 2, "id": with_contact})["item"]
    assert item["contactIds"] == [contact], "crm-deal-list.md: contacts come from crm.item.*"


def test_deal_list_envelope(rest: Rest) -> None:
    for _ in range(3):
        rest.ok("crm.deal.add", {"fields": {"TITLE": "t"}})
    body = rest.raw("crm.deal.list", {"select": ["ID", "TITLE"]}).json()
    assert body["total"] == 3 and "next" not in body, (
        "crm-deal-list.md: total counts all; next only when more than 50 match"
    )
    assert set(body["result"][0]) == {"ID", "TITLE"}, "crm-deal-list.md: select shapes the rows"
    response = rest.raw("crm.deal.get", {"id": 12345})
    assert response.status_code == 400 and response.json()["error"] == "", (
        "crm-deal-get.md: Not found is HTTP 400 with an empty error code"
    )


# ------------------------------------------------------- contacts and companies


def test_contact_defaults_and_flags(plus2: Sandbox) -> None:
    contact_id = plus2.call(
        "crm.contact.add",
        {
            "fields": {
                "NAME": "John",
                "BIRTHDATE": "2001-11-11",
                "PHONE": [{"VALUE": "+13333333555", "VALUE_TYPE": "WORK"}],
            }
        },
    )
    contact = plus2.call("crm.contact.get", {"id": contact_id})
    assert (contact["TYPE_ID"], contact["SOURCE_ID"]) == ("CLIENT", "CALL"), (
        "crm-contact-add.md: TYPE_ID and SOURCE_ID default to the first available"
    )
    assert contact["EXPORT"] == "Y", "crm-contact-add.md: EXPORT defaults to Y"
    assert (contact["HAS_PHONE"], contact["HAS_EMAIL"]) == ("Y", "N"), (
        "crm-contact-get.md: HAS_PHONE / HAS_EMAIL are Y / N"
    )
    assert contact["BIRTHDATE"] == "2001-11-11T02:00:00+02:00", (
        'crm-contact-get.md: "BIRTHDATE": "2001-11-11T02:00:00+02:00"'
    )
    assert contact["PHONE"][0]["TYPE_ID"] == "PHONE" and isinstance(
        contact["PHONE"][0]["ID"], str
    ), "crm-contact-get.md: PHONE entries carry string ID and TYPE_ID"
    plus2.call(
        "crm.contact.update",
        {
            "id": contact_id,
            "fields": {"EMAIL": [{"VALUE": "john@example.com", "VALUE_TYPE": "WORK"}]},
        },
    )
    assert plus2.call("crm.contact.get", {"id": contact_id})["HAS_EMAIL"] == "Y", (
        "crm-contact-get.md: HAS_EMAIL follows the e-mails"
    )
    err = call_error(plus2, "crm.contact.add", {"fields": {"EMAIL": [{"VALUE": "bad"}]}})
    assert err.code == "ERROR_CORE", "crm-contact-add.md: an invalid e-mail is ERROR_CORE"


def test_company_defaults(api: Sandbox) -> None:
    company_id = api.call("crm.company.add", {"fields": {"TITLE": "GAZPROM", "REVENUE": 0}})
    company = api.call("crm.company.get", {"id": company_id})
    assert (company["COMPANY_TYPE"], company["INDUSTRY"], company["EMPLOYEES"]) == (
        "CUSTOMER",
        "IT",
        "EMPLOYEES_1",
    ), "crm-company-add.md: COMPANY_TYPE, INDUSTRY, EMPLOYEES default to the first available"
    assert (company["IS_MY_COMPANY"], company["HAS_PHONE"], company["HAS_EMAIL"]) == (
        "N",
        "N",
        "N",
    ), "crm-company-get.md: IS_MY_COMPANY, HAS_PHONE, HAS_EMAIL read N"
    assert company["REVENUE"] == "0", 'crm-company-get.md: "REVENUE": "0"'
    assert company["ID"] == str(company_id), 'crm-company-get.md: "ID": "2909" is a string'


# -------------------------------------------------------- deal contact bindings


def test_deal_contact_items(api: Sandbox) -> None:
    c55, c54, c56 = (api.call("crm.contact.add", {"fields": {"NAME": n}}) for n in "abc")
    deal = api.call("crm.deal.add", {"fields": {}})
    assert (
        api.call(
            "crm.deal.contact.items.set",
            {
                "id": deal,
                "items": [
                    {"CONTACT_ID": c55, "IS_PRIMARY": "Y", "SORT": 100},
                    {"CONTACT_ID": c54, "SORT": 200},
                    {"CONTACT_ID": c56, "SORT": 400},
                ],
            },
        )
        is True
    ), "crm-deal-contact-items-set.md: true"
    items = api.call("crm.deal.contact.items.get", {"id": deal})
    assert items == [
        {"CONTACT_ID": c55, "SORT": 100, "ROLE_ID": 0, "IS_PRIMARY": "Y"},
        {"CONTACT_ID": c54, "SORT": 200, "ROLE_ID": 0, "IS_PRIMARY": "N"},
        {"CONTACT_ID": c56, "SORT": 400, "ROLE_ID": 0, "IS_PRIMARY": "N"},
    ], "crm-deal-contact-items-get.md: the example answer, integers as integers"
    api.call(
        "crm.deal.contact.items.set",
        {"id": deal, "items": [{"CONTACT_ID": c54}, {"CONTACT_ID": c56}]},
    )
    items = api.call("crm.deal.contact.items.get", {"id": deal})
    assert [(i["CONTACT_ID"], i["SORT"], i["IS_PRIMARY"]) for i in items] == [
        (c54, 10, "Y"),
        (c56, 20, "N"),
    ], "crm-deal-contact-items-set.md: SORT defaults to (i + 1) * 10; no Y makes the first primary"
    api.call(
        "crm.deal.contact.items.set",
        {
            "id": deal,
            "items": [
                {"CONTACT_ID": c54},
                {"CONTACT_ID": c56, "IS_PRIMARY": "Y"},
                {"CONTACT_ID": c55, "IS_PRIMARY": "Y"},
            ],
        },
    )
    primary = [
        i["CONTACT_ID"]
        for i in api.call("crm.deal.contact.items.get", {"id": deal})
        if i["IS_PRIMARY"] == "Y"
    ]
    assert primary == [c56], "crm-deal-contact-items-set.md: the first IS_PRIMARY = Y wins"
    assert api.call("crm.deal.get", {"id": deal})["CONTACT_ID"] == str(c56), (
        "crm-deal-get.md: CONTACT_ID is the primary contact"
    )
    api.call("crm.deal.contact.items.set", {"id": deal, "items": []})
    assert api.call("crm.deal.contact.items.get", {"id": deal}) == [], (
        "crm-deal-contact-items-set.md: contacts not in the list are unlinked"
    )


def test_deal_contact_items_errors(api: Sandbox) -> None:
    err = call_error(api, "crm.deal.contact.items.get", {"id": 0})
    assert (err.code, err.description) == (
        "",
        "The parameter ownerEntityID is invalid or not defined.",
    ), "crm-deal-contact-items-get.md: id less than 1"
    err = call_error(api, "crm.deal.contact.items.get", {"id": 777})
    assert (err.code, err.description, err.status) == ("", "Not found.", 400), (
        "crm-deal-contact-items-get.md: Not found."
    )
    err = call_error(api, "crm.deal.contact.items.set", {"id": 777, "items": []})
    assert err.description == "Not found.", "crm-deal-contact-items-set.md: Not found."
    deal = api.call("crm.deal.add", {"fields": {}})
    err = call_error(api, "crm.deal.contact.items.set", {"id": deal, "items": "x"})
    assert err.description == "The parameter items must be array.", (
        "crm-deal-contact-items-set.md: The parameter items must be array."
    )


# ------------------------------------------------------------------ crm.item.*


def test_item_shapes(plus2: Sandbox) -> None:
    item = plus2.call(
        "crm.item.add",
        {
            "entityTypeId": 2,
            "fields": {"title": "REST Deal #1", "opportunity": 10000, "begindate": "2024-07-23"},
        },
    )["item"]
    assert item["entityTypeId"] == 2, 'crm-item-add.md: the item carries "entityTypeId": 2'
    assert item["opportunity"] == 10000 and isinstance(item["opportunity"], int), (
        'crm-item-update.md: "opportunity": 10000'
    )
    assert item["taxValue"] == 0, 'crm-item-update.md: "taxValue": 0'
    assert (item["companyId"], item["contactId"], item["contactIds"]) == (0, 0, []), (
        'crm-item-update.md: "companyId": 0, "contactId": 0, "contactIds": []'
    )
    assert item["begindate"] == "2024-07-23T02:00:00+02:00", (
        'crm-item-update.md: "begindate": "2024-07-23T02:00:00+02:00"'
    )
    assert (item["isRecurring"], item["isManualOpportunity"]) == ("N", "N"), (
        "crm-item-add.md: isRecurring and isManualOpportunity default to N"
    )
    got = plus2.call("crm.item.get", {"entityTypeId": 2, "id": item["id"]})
    assert list(got) == ["item"] and got["item"]["entityTypeId"] == 2, (
        "crm-item-get.md: result holds a single key item"
    )


def test_item_list_and_delete(rest: Rest) -> None:
    ids = [
        rest.ok("crm.item.add", {"entityTypeId": 2, "fields": {"title": f"L{i}"}})["item"]["id"]
        for i in range(2)
    ]
    body = rest.raw("crm.item.list", {"entityTypeId": 2, "select": ["id", "title"]}).json()
    assert body["total"] == 2 and list(body["result"]) == ["items"], (
        "crm-item-list.md: result holds items; total beside it"
    )
    assert body["result"]["items"][0] == {"id": ids[0], "title": "L0"}, (
        "crm-item-list.md / fast_bitrix24 real_responses/crm_item_list.py: only what select asks"
    )
    assert rest.ok("crm.item.delete", {"entityTypeId": 2, "id": ids[0]}) == [], (
        "crm-item-delete.md: result is []"
    )
    status, code, text = rest.error("crm.item.delete", {"entityTypeId": 2, "id": ids[0]})
    assert (status, code, text) == (400, "NOT_FOUND", "Item not found"), (
        "crm-item-delete.md: NOT_FOUND, Item not found, HTTP 400"
    )
    status, code, text = rest.error("crm.item.get", {"entityTypeId": 2, "id": ids[0]})
    assert (status, code, text) == (400, "NOT_FOUND", "Item not found"), (
        "crm-item-get.md: NOT_FOUND, Item not found"
    )


def test_item_list_errors(api: Sandbox) -> None:
    err = call_error(api, "crm.item.list", {"entityTypeId": 2, "filter": {"FIELD": 1}})
    assert (err.code, err.description) == (
        "INVALID_ARG_VALUE",
        "Invalid filter: field 'FIELD' is not allowed in filter",
    ), "crm-item-list.md: the error example"
    err = call_error(api, "crm.item.list", {"entityTypeId": 2, "order": {"nope": "ASC"}})
    assert err.description == "Invalid order: field 'nope' is not allowed in order", (
        "crm-item-list.md: a field not allowed in order"
    )
    err = call_error(api, "crm.item.list", {"entityTypeId": 2, "order": {"id": "UP"}})
    assert err.description == (
        "Invalid order: allowed sort directions are ASC, DESC. But got 'UP' for field 'id'"
    ), "crm-item-list.md: a sort direction other than ASC, DESC"
    err = call_error(api, "crm.item.add", {"entityTypeId": 2, "fields": {"contactIds": 5}})
    assert err.code == 100 and err.description.startswith(
        "Expected iterable value for multiple field, but got"
    ), "crm-item-add.md: code 100 for a scalar in a multiple field"
