"""Does a portal behave as b24kit and its sandbox assume? One list of assumptions, each with
its source and a check that runs against any portal: a real one (``b24kit portal
conformance``) or the sandbox (tests/test_conformance.py runs the same list, so the two
cannot drift).

The checks work inside a throwaway deal pipeline and smart process named
``b24kit-conformance-<random>``, made first and removed last; removal is verified by
reading back. Nothing else on the portal is written.

    report = await run_conformance(client)
    report.differs  # the assumptions that did not hold
"""

from __future__ import annotations

import contextlib
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from b24kit.client import B24Client, B24Error, read_all
from b24kit.client.address import WebhookAddress
from b24kit.client.auth import OAuthAuth, WebhookAuth
from b24kit.encoding import as_list
from b24kit.errors import InputError
from b24kit.portal.ids import (
    DEAL_TEMPLATE,
    EntityType,
    spa_uf_entity,
    spa_uf_prefix,
    stage_entity,
    stage_prefix,
    status_id,
)

ISO_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")
DEAL_CODES = list(DEAL_TEMPLATE)  # the template's codes, in the portal's order
DEAL = int(EntityType.DEAL)
LONG_STAGE = "B24KIT_CONFORMANCE_LONG_STAGE"


def _id(value: int | None) -> int:
    """An id set-up made (a check runs only once set-up has succeeded)."""
    assert value is not None, "set-up has not made this yet"
    return value


UF_MISSING = {  # userfieldconfig-{get,update,delete}.md: code "" and these texts, HTTP 400
    "get": "You do not have permission to view user field settings",
    "update": "You cannot change the settings of the user field",
    "delete": "You cannot delete the user field",
}


@dataclass
class Scratch:
    """What the run made on the portal, for the checks and for the clean-up."""

    tag: str
    pipeline: int | None = None
    deals: list[int] = field(default_factory=list)
    comment: int | None = None
    spa_id: int | None = None
    spa_etid: int | None = None
    spa_code_sent: str = ""
    field_id: int | None = None
    pipeline2: int | None = None  # a second pipeline, for moving a deal between them
    spa2_id: int | None = None  # a second smart process with a field of its own
    field_name: str = ""
    made: list[str] = field(default_factory=list)


@dataclass
class Seen:
    held: bool
    seen: str
    checked: bool = True  # False: this portal gave no way to check (shown as such)


Check = Callable[[B24Client, Scratch], Awaitable[Seen]]


@dataclass(frozen=True)
class Assumption:
    id: str
    title: str
    source: str  # the docs page, recorded answer or source code it rests on
    expected: str
    check: Check
    reading: str | None = None  # the sandbox reading (sandbox/readings.py) that breaks it
    settled: bool = True  # False: no source settles it; b24kit is right either way


@dataclass
class Result:
    assumption: Assumption
    held: bool
    seen: str
    checked: bool = True

    def as_dict(self) -> dict[str, Any]:
        a = self.assumption
        return {
            "id": a.id,
            "title": a.title,
            "source": a.source,
            "expected": a.expected,
            "seen": self.seen,
            "held": self.held,
            "checked": self.checked,
            "settled": a.settled,
        }


@dataclass
class Report:
    portal: str
    results: list[Result]
    cleanup: list[str]  # what could not be removed; empty when all is gone
    setup_error: str = ""  # the set-up failed: no check ran

    @property
    def differs(self) -> list[Result]:
        return [r for r in self.results if not r.held]

    def as_dict(self) -> dict[str, Any]:
        return {
            "portal": self.portal,
            "setup_error": self.setup_error,
            "held": len(self.results) - len(self.differs),
            "differs": len(self.differs),
            "cleanup_left": self.cleanup,
            "assumptions": [r.as_dict() for r in self.results],
        }


def _short(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error(status: int, body: dict[str, Any]) -> str:
    return f"HTTP {status} error={body.get('error')!r} {_short(body.get('error_description'))!r}"


# ------------------------------------------------------------------------- the checks
async def _envelope(client: B24Client, s: Scratch) -> Seen:
    status, body = await client.raw("server.time")
    keys = sorted((body.get("time") or {}).keys())
    need = {"start", "finish", "duration", "processing", "date_start", "date_finish"}
    ok = status == 200 and isinstance(body.get("result"), str) and need <= set(keys)
    return Seen(ok, f"HTTP {status}, result {type(body.get('result')).__name__}, time {keys}")


async def _batch_shape(client: B24Client, s: Scratch) -> Seen:
    status, body = await client.raw(
        "batch", {"halt": 0, "cmd": {"a": "server.time", "b": "b24kit.conformance.no_such_method"}}
    )
    result = body.get("result") or {}
    keys = sorted(result) if isinstance(result, dict) else []
    errors = result.get("result_error") if isinstance(result, dict) else None
    b = errors.get("b") if isinstance(errors, dict) else None
    ok = (
        status == 200
        and {"result", "result_error", "result_total", "result_next", "result_time"} <= set(keys)
        and isinstance(result.get("result"), dict)
        and "a" in result["result"]
        and isinstance(b, dict)
        and b.get("error") == "ERROR_METHOD_NOT_FOUND"
    )
    return Seen(ok, f"HTTP {status}, keys {keys}, b: {_short(b)}")


async def _batch_limit(client: B24Client, s: Scratch) -> Seen:
    cmd = {f"c{i}": "server.time" for i in range(51)}
    status, body = await client.raw("batch", {"halt": 0, "cmd": cmd})
    result = body.get("result") or {}
    done = result.get("result") if isinstance(result, dict) else None
    errors = result.get("result_error") if isinstance(result, dict) else None
    last = errors.get("c50") if isinstance(errors, dict) else None
    ok = (
        status == 200
        and isinstance(done, dict)
        and len(done) == 50
        and isinstance(last, dict)
        and last.get("error") == "ERROR_BATCH_LENGTH_EXCEEDED"
    )
    ran = len(done) if isinstance(done, dict) else 0
    seen = (
        f"HTTP {status}, {ran} ran, c50: {_short(last)}" if status == 200 else _error(status, body)
    )
    return Seen(ok, seen)


async def _method_not_found(client: B24Client, s: Scratch) -> Seen:
    status, body = await client.raw("b24kit.conformance.no_such_method")
    return Seen(
        status == 404 and body.get("error") == "ERROR_METHOD_NOT_FOUND", _error(status, body)
    )


async def _auth_status(client: B24Client, s: Scratch) -> Seen:
    auth = client.auth
    if isinstance(auth, WebhookAuth):
        a = auth.address
        wrong: Any = WebhookAuth(WebhookAddress(a.base, a.user_id, "b24kitconformance" + s.tag))
    elif isinstance(auth, OAuthAuth):
        wrong = replace(auth, access_token="b24kitconformance" + s.tag)
    else:
        return Seen(True, "not checked: unknown kind of credentials")
    status, body = await client.raw("user.current", auth=wrong)
    ok = status == 401 and str(body.get("error", "")).upper() in (
        "INVALID_CREDENTIALS",
        "INVALID_TOKEN",
        "NO_AUTH_FOUND",
    )
    return Seen(ok, _error(status, body))


# methods of scopes a webhook may lack: those the sandbox has first, then common others
SCOPED = (
    ("user", "user.get"),
    ("userfieldconfig", "userfieldconfig.getTypes"),
    ("department", "department.get"),
    ("calendar", "calendar.section.get"),
    ("disk", "disk.storage.getlist"),
    ("im", "im.counters.get"),
)


async def _scope_status(client: B24Client, s: Scratch) -> Seen:
    granted = {str(x) for x in as_list(await client.call("scope"))}
    for scope, method in SCOPED:
        if scope in granted:
            continue
        status, body = await client.raw(method, {"moduleId": "crm"})
        if str(body.get("error", "")).lower() != "insufficient_scope":
            # answered (user.get also works with user_brief), or another error: this method
            # tells nothing about the scope; try another
            continue
        return Seen(status == 403, f"{method} without the {scope} scope: {_error(status, body)}")
    return Seen(True, "not checked: the webhook has every scope tried", checked=False)


async def _list_paging(client: B24Client, s: Scratch) -> Seen:
    env = await client.envelope(
        "crm.deal.list",
        {"filter": {"CATEGORY_ID": s.pipeline}, "select": ["ID"], "order": {"ID": "ASC"}},
    )
    rows = as_list(env.result)
    ok = len(rows) == 50 and env.total == 51 and env.next == 50
    return Seen(ok, f"{len(rows)} rows, total {env.total!r}, next {env.next!r}")


async def _keyset_page(client: B24Client, s: Scratch) -> Seen:
    after = s.deals[9]
    env = await client.envelope(
        "crm.deal.list",
        {
            "filter": {"CATEGORY_ID": s.pipeline, ">ID": after},
            "select": ["ID"],
            "order": {"ID": "ASC"},
            "start": -1,
        },
    )
    ids = [int(r["ID"]) for r in as_list(env.result)]
    ok = ids == sorted(s.deals)[10:] and env.next is None
    return Seen(
        ok,
        f"{len(ids)} rows after ID {after}, ascending: {ids == sorted(ids)}, "
        f"next {env.next!r}, total {env.total!r}",
    )


async def _status_list_unpaged(client: B24Client, s: Scratch) -> Seen:
    env = await client.envelope("crm.status.list", {"order": {"SORT": "ASC"}})
    rows = as_list(env.result)
    ok = env.next is None and (len(rows) != 50 or env.total in (None, 50))
    return Seen(ok, f"{len(rows)} rows, next {env.next!r}, total {env.total!r}")


async def _new_pipeline_stages(client: B24Client, s: Scratch) -> Seen:
    rows = as_list(
        await client.call(
            "crm.status.list",
            {
                "filter": {"ENTITY_ID": stage_entity(DEAL, _id(s.pipeline))},
                "order": {"SORT": "ASC"},
            },
        )
    )
    prefix = stage_prefix(DEAL, _id(s.pipeline))
    codes = [str(r["STATUS_ID"]) for r in rows]
    template = [
        c.removeprefix(prefix)
        for c in codes
        if not c.removeprefix(prefix).startswith(("CONF", "B24KIT"))  # the run's own
    ]
    # ids are cut to 21 characters: C12:PREPAYMENT_INVOIC
    expected = [status_id(prefix, code).removeprefix(prefix) for code in DEAL_CODES]
    ok = all(c.startswith(prefix) for c in codes) and template == expected
    return Seen(ok, ", ".join(codes))


def _our_stages(s: Scratch) -> tuple[str, str]:
    """The ids of the two stages set-up adds: a short code and one cut to 21 characters."""
    prefix = stage_prefix(DEAL, _id(s.pipeline))
    return status_id(prefix, "CONF"), status_id(prefix, LONG_STAGE)


async def _stage_id_cut(client: B24Client, s: Scratch) -> Seen:
    status, body = await client.raw(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": stage_entity(DEAL, _id(s.pipeline)),
                "STATUS_ID": LONG_STAGE,
                "NAME": "LONG",
                "SORT": 16,
            }
        },
    )
    if "error" in body:  # crm-status-add.md: "max length depends on the pipeline id"
        return Seen(
            False, f"a {len(LONG_STAGE)}-character code was refused: " + _error(status, body)
        )
    rows = as_list(
        await client.call(
            "crm.status.list", {"filter": {"ENTITY_ID": stage_entity(DEAL, _id(s.pipeline))}}
        )
    )
    want_short, want_long = _our_stages(s)
    ids = {str(r["STATUS_ID"]) for r in rows}
    return Seen(
        {want_short, want_long} <= ids,
        f"looked for {want_short!r} and {want_long!r}; "
        f"found {sorted(i for i in ids if 'CONF' in i)}",
    )


async def _spa_stage_prefix(client: B24Client, s: Scratch) -> Seen:
    cats = as_list(
        (await client.call("crm.category.list", {"entityTypeId": s.spa_etid})).get("categories")
    )
    if not cats:
        return Seen(False, "the smart process has no pipeline")
    cat = cats[0]
    rows = as_list(
        await client.call(
            "crm.status.list",
            {"filter": {"ENTITY_ID": stage_entity(_id(s.spa_etid), int(cat["id"]))}},
        )
    )
    prefix = stage_prefix(_id(s.spa_etid), int(cat["id"]))
    codes = [str(r["STATUS_ID"]) for r in rows]
    return Seen(
        bool(codes) and all(c.startswith(prefix) for c in codes),
        f"{len(codes)} stages, e.g. {codes[:2]}",
    )


async def _type_keeps_code(client: B24Client, s: Scratch) -> Seen:
    full = (await client.call("crm.type.get", {"id": s.spa_id}))["type"]
    return Seen(full.get("code") == s.spa_code_sent, f"code {full.get('code')!r}")


async def _type_update_sets_code(client: B24Client, s: Scratch) -> Seen:
    wanted = f"{s.spa_code_sent}_u"
    await client.call("crm.type.update", {"id": s.spa2_id, "fields": {"code": wanted}})
    full = (await client.call("crm.type.get", {"id": s.spa2_id}))["type"]
    return Seen(full.get("code") == wanted, f"code after the update {full.get('code')!r}")


async def _enum_values(client: B24Client, s: Scratch) -> list[str]:
    """The values of the run's list field, read with userfieldconfig.get."""
    got = (await client.call("userfieldconfig.get", {"moduleId": "crm", "id": s.field_id}))["field"]
    return [str(e.get("value")) for e in as_list(got.get("enum"))]


async def _uf_enum_needs_type(client: B24Client, s: Scratch) -> Seen:
    await client.call(
        "userfieldconfig.update",
        {"moduleId": "crm", "id": s.field_id, "field": {"enum": [{"value": "B", "xmlId": "B"}]}},
    )
    without = await _enum_values(client, s)
    await client.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": s.field_id,
            "field": {"userTypeId": "enumeration", "enum": [{"value": "C", "xmlId": "C"}]},
        },
    )
    with_type = await _enum_values(client, s)
    ok = "B" not in without and "C" in with_type
    return Seen(ok, f"values after enum alone: {without}; with userTypeId: {with_type}")


async def _uf_enum_partial(client: B24Client, s: Scratch) -> Seen:
    before = await _enum_values(client, s)
    await client.call(
        "userfieldconfig.update",
        {
            "moduleId": "crm",
            "id": s.field_id,
            "field": {"userTypeId": "enumeration", "enum": [{"value": "D", "xmlId": "D"}]},
        },
    )
    after = await _enum_values(client, s)
    ok = all(v in after for v in before) and "D" in after
    return Seen(ok, f"before {before}; after an enum naming only a new value: {after}")


async def _uf_list_full(client: B24Client, s: Scratch) -> Seen:
    rows = as_list(
        (
            await client.call(
                "userfieldconfig.list",
                {"moduleId": "crm", "filter": {"id": s.field_id}},
            )
        ).get("fields")
    )
    mine = next((r for r in rows if int(r.get("id", 0)) == s.field_id), None)
    if mine is None:
        return Seen(False, f"the field is not in the list ({len(rows)} rows)")
    ok = "enum" in mine and "editFormLabel" in mine
    return Seen(ok, f"keys: {sorted(mine)}")


async def _uf_list_filter(client: B24Client, s: Scratch) -> Seen:
    other = spa_uf_entity(_id(s.spa2_id))  # the second smart process: its own field, not ours
    rows = as_list(
        (
            await client.call(
                "userfieldconfig.list", {"moduleId": "crm", "filter": {"entityId": other}}
            )
        ).get("fields")
    )
    foreign = sorted({str(r.get("entityId")) for r in rows if r.get("entityId") != other})
    own = [r for r in rows if r.get("entityId") == other]
    return Seen(
        not foreign and len(own) == 1,
        f"{len(own)} row(s) of {other}" + (f", and rows of {foreign}" if foreign else ""),
    )


async def _uf_missing(client: B24Client, s: Scratch) -> Seen:
    gone = s.field_id
    await client.call("userfieldconfig.delete", {"moduleId": "crm", "id": gone})
    s.field_id = None
    seen = []
    ok = True
    for verb, params in (("get", {}), ("update", {"field": {"sort": 10}}), ("delete", {})):
        status, body = await client.raw(
            f"userfieldconfig.{verb}", {"moduleId": "crm", "id": gone, **params}
        )
        ok = ok and status == 400 and body.get("error") == "" and "result" not in body
        seen.append(f"{verb}: {_error(status, body)}")
    return Seen(ok, "; ".join(seen))


async def _comment_filter(client: B24Client, s: Scratch) -> Seen:
    status, body = await client.raw(
        "crm.timeline.comment.list", {"filter": {"ENTITY_TYPE": "deal"}}
    )
    refused = status >= 400 and "error" in body
    env = await client.envelope(
        "crm.timeline.comment.list", {"filter": {"ENTITY_ID": s.deals[0], "ENTITY_TYPE": "deal"}}
    )
    found = [int(r["ID"]) for r in as_list(env.result)]
    ok = refused and s.comment in found
    return Seen(
        ok,
        f"ENTITY_TYPE alone: {_error(status, body) if refused else 'answered'}; "
        f"both: {len(found)} comment(s)",
    )


async def _deal_values(client: B24Client, s: Scratch) -> Seen:
    deal = await client.call("crm.deal.get", {"id": s.deals[0]})
    checks = {
        "ID": isinstance(deal.get("ID"), str),
        "CATEGORY_ID": deal.get("CATEGORY_ID") == str(s.pipeline),
        "OPPORTUNITY": isinstance(deal.get("OPPORTUNITY"), str),
        "CLOSED": deal.get("CLOSED") in ("Y", "N"),
        "DATE_CREATE": bool(ISO_DATETIME.match(str(deal.get("DATE_CREATE")))),
        "STAGE_ID": str(deal.get("STAGE_ID", "")).startswith(stage_prefix(DEAL, _id(s.pipeline))),
    }
    bad = [k for k, v in checks.items() if not v]
    return Seen(
        not bad,
        "as expected" if not bad else "; ".join(f"{k}={_short(deal.get(k), 40)}" for k in bad),
    )


async def _item_shape(client: B24Client, s: Scratch) -> Seen:
    got = await client.call("crm.item.get", {"entityTypeId": DEAL, "id": s.deals[0]})
    item = got.get("item") if isinstance(got, dict) else None
    ok = (
        isinstance(item, dict)
        and item.get("id") == s.deals[0]
        and item.get("categoryId") == s.pipeline
        and "stageId" in item
    )
    return Seen(
        ok,
        f"keys {sorted(got) if isinstance(got, dict) else type(got).__name__}"
        + (
            f", id {item.get('id')!r}, categoryId {item.get('categoryId')!r}"
            if isinstance(item, dict)
            else ""
        ),
    )


async def _category_immutable(client: B24Client, s: Scratch) -> Seen:
    deal = s.deals[1]  # asked to move to the run's second pipeline, never a client's one
    await client.call("crm.deal.update", {"id": deal, "fields": {"CATEGORY_ID": s.pipeline2}})
    after = await client.call("crm.deal.get", {"id": deal})
    return Seen(
        after.get("CATEGORY_ID") == str(s.pipeline),
        f"CATEGORY_ID after the update: {after.get('CATEGORY_ID')!r}",
    )


async def _stage_history(client: B24Client, s: Scratch) -> Seen:
    got = await client.call(
        "crm.stagehistory.list",
        {"entityTypeId": DEAL, "filter": {"OWNER_ID": s.deals[0]}, "order": {"ID": "ASC"}},
    )
    rows = as_list(got.get("items") if isinstance(got, dict) else None)
    first = rows[0] if rows else {}
    ok = (
        bool(rows)
        and str(first.get("TYPE_ID")) == "1"
        and str(first.get("CATEGORY_ID")) == str(s.pipeline)
    )
    return Seen(
        ok,
        f"{len(rows)} row(s); first TYPE_ID {first.get('TYPE_ID')!r}, "
        f"CATEGORY_ID {first.get('CATEGORY_ID')!r}",
    )


ASSUMPTIONS: tuple[Assumption, ...] = (
    Assumption(
        "envelope-time",
        "every answer carries result and a time object",
        "settings/how-to-call-rest-api/general-principles.md; data-types.md (time)",
        "HTTP 200, time with start, finish, duration, processing, date_start, date_finish",
        _envelope,
    ),
    Assumption(
        "batch-shape",
        "batch answers result, result_error, result_total, result_next, "
        "result_time; a failed command does not fail the call",
        "settings/how-to-call-rest-api/batch.md",
        "all five keys; b: ERROR_METHOD_NOT_FOUND",
        _batch_shape,
    ),
    Assumption(
        "batch-limit-50",
        "a batch runs 50 commands; each one past the 50th gets ERROR_BATCH_LENGTH_EXCEEDED",
        "rest module source (CRestProvider::methodsBatch)",
        "50 ran, c50: ERROR_BATCH_LENGTH_EXCEEDED",
        _batch_limit,
    ),
    Assumption(
        "method-not-found",
        "an unknown method is HTTP 404 ERROR_METHOD_NOT_FOUND",
        "_includes/system-errors.md",
        "HTTP 404 ERROR_METHOD_NOT_FOUND",
        _method_not_found,
    ),
    Assumption(
        "auth-status",
        "a wrong secret is HTTP 401",
        "_includes/system-errors.md says 403 "
        "INVALID_CREDENTIALS, 401 NO_AUTH_FOUND; measured 401 (b24jssdk#500)",
        "HTTP 401 INVALID_CREDENTIALS",
        _auth_status,
        reading="auth-403",
        settled=False,
    ),
    Assumption(
        "scope-status",
        "a method of a scope the webhook lacks is HTTP 403 insufficient_scope",
        "_includes/system-errors.md (403); the rest source throws it as an OAuthException (401)",
        "HTTP 403 insufficient_scope",
        _scope_status,
        reading="scope-401",
        settled=False,
    ),
    Assumption(
        "list-paging",
        "old-style lists give 50 rows, total and next",
        "crm/deals/crm-deal-list.md",
        "50 rows, total 51, next 50",
        _list_paging,
    ),
    Assumption(
        "keyset-page",
        "start=-1 with >ID and order ID ASC gives the next rows without next",
        "settings/performance/huge-data.md; crm-deal-list.md",
        "the 41 deals after the 10th, ascending, next None",
        _keyset_page,
    ),
    Assumption(
        "status-list-unpaged",
        "crm.status.list answers every row at once",
        "crm/status/crm-status-list.md (a comment says 50 a page; the example does not)",
        "no next",
        _status_list_unpaged,
        reading="status-list-pages",
        settled=False,
    ),
    Assumption(
        "deal-pipeline-template",
        "a new deal pipeline gets the 8 stages of the general one, prefixed C{id}:",
        "crm/universal/category/crm-category-add.md; crm/status/crm-status-list.md",
        ", ".join(DEAL_CODES),
        _new_pipeline_stages,
    ),
    Assumption(
        "deal-stage-prefix",
        "crm.status.add in DEAL_STAGE_{id} prefixes C{id}: and cuts the id to 21 characters",
        "crm/status/crm-status-add.md",
        "C{id}:CONF and C{id}:B24KIT_CONFORMANCE_LONG_STAGE cut to 21",
        _stage_id_cut,
    ),
    Assumption(
        "spa-stage-prefix",
        "a smart process's stages are DT{etid}_{category}:CODE",
        "crm/universal/user-defined-object-types/crm-type-add.md; crm-status-list.md",
        "every stage id starts with DT{etid}_{category}:",
        _spa_stage_prefix,
    ),
    Assumption(
        "type-add-keeps-code",
        "crm.type.add keeps code",
        "crm-type-add.md (its table omits code); crm-type-fields.md (lists it)",
        "the code sent",
        _type_keeps_code,
        reading="type-add-drops-code",
        settled=False,
    ),
    Assumption(
        "type-update-sets-code",
        "crm.type.update sets code",
        "crm-type-update.md (its example carries code); crm-type-fields.md",
        "the code sent",
        _type_update_sets_code,
    ),
    Assumption(
        "uf-update-enum-needs-type",
        "userfieldconfig.update applies enum only with userTypeId enumeration",
        "crm/universal/userfieldconfig/userfieldconfig-update.md",
        "enum alone ignored; with userTypeId applied",
        _uf_enum_needs_type,
        reading="enum-without-usertype",
    ),
    Assumption(
        "uf-update-enum-partial",
        "an enum in userfieldconfig.update adds and changes the values it names, keeps the rest",
        "userfieldconfig-update.md (id to update, del to delete); its earlier text and the main "
        "module's prepareEnums: the complete list",
        "the values before, and the new one",
        _uf_enum_partial,
        reading="uf-enum-replaces",
        settled=False,
    ),
    Assumption(
        "uf-list-full-rows",
        "userfieldconfig.list rows carry enum and labels",
        "userfieldconfig-list.md (its example shows neither)",
        "enum and editFormLabel in the row",
        _uf_list_full,
        reading="uf-list-bare",
        settled=False,
    ),
    Assumption(
        "uf-list-entity-filter",
        "userfieldconfig.list honours a filter on entityId",
        "userfieldconfig-list.md (entityId is not among its filter fields)",
        "no rows of another entity",
        _uf_list_filter,
        reading="uf-list-ignores-entity",
        settled=False,
    ),
    Assumption(
        "uf-missing-error",
        'userfieldconfig.get/update/delete of a deleted field: HTTP 400, error ""',
        "userfieldconfig-get.md, -update.md, -delete.md",
        "; ".join(f"{k}: 400 '' {v!r}" for k, v in UF_MISSING.items()),
        _uf_missing,
    ),
    Assumption(
        "comment-list-filter",
        "crm.timeline.comment.list needs ENTITY_ID and ENTITY_TYPE",
        "crm/timeline/comments/crm-timeline-comment-list.md",
        "ENTITY_TYPE alone refused; both: the comment",
        _comment_filter,
    ),
    Assumption(
        "deal-value-types",
        "crm.deal.get gives strings, Y/N, ISO dates with offset",
        "crm/deals/crm-deal-get.md; fast_bitrix24 real_responses",
        "ID, CATEGORY_ID, OPPORTUNITY strings; CLOSED Y/N; DATE_CREATE ISO+offset; STAGE_ID C{id}:",
        _deal_values,
    ),
    Assumption(
        "item-shape",
        "crm.item.get wraps the item, camelCase, typed",
        "crm/universal/crm-item-get.md",
        "{item: {id: int, categoryId: int, stageId}}",
        _item_shape,
    ),
    Assumption(
        "deal-category-immutable",
        "crm.deal.update does not move a deal between pipelines",
        "crm/deals/crm-deal-update.md (CATEGORY_ID); crm/universal/crm-item-update.md",
        "CATEGORY_ID unchanged",
        _category_immutable,
    ),
    Assumption(
        "stage-history",
        "creating a deal writes a stage history row of TYPE_ID 1",
        "crm/crm-stage-history-list.md",
        "TYPE_ID 1 with the pipeline",
        _stage_history,
    ),
)


# --------------------------------------------------------------------- set-up, clean-up
def _name(s: Scratch) -> str:
    return f"b24kit-conformance-{s.tag}"


async def _set_up(client: B24Client, s: Scratch) -> None:
    """Make the throwaway entities. Each id is kept as soon as it is known; what was made
    without an answer is found by its name in the clean-up."""
    name = _name(s)
    no_events = {"REGISTER_SONET_EVENT": "N"}  # crm-deal-add.md: no feed entries
    for attr, label in (("pipeline", name), ("pipeline2", f"{name} 2")):
        cat = await client.call(
            "crm.category.add", {"entityTypeId": DEAL, "fields": {"name": label, "sort": 99999}}
        )
        setattr(s, attr, int(cat["category"]["id"]))
        s.made.append(f"deal pipeline {cat['category']['id']} «{label}»")
    await client.call(
        "crm.status.add",
        {
            "fields": {
                "ENTITY_ID": stage_entity(DEAL, _id(s.pipeline)),
                "STATUS_ID": "CONF",
                "NAME": "CONF",
                "SORT": 15,
            }
        },
    )
    batch = await client.batch(
        {
            f"d{i}": (
                "crm.deal.add",
                {
                    "fields": {"TITLE": f"{name} {i}", "CATEGORY_ID": s.pipeline},
                    "params": no_events,
                },
            )
            for i in range(50)
        }
    )
    s.deals = [int(batch.result[f"d{i}"]) for i in range(50) if f"d{i}" in batch.result]
    if batch.error:
        raise next(iter(batch.error.values()))
    s.deals.append(
        int(
            await client.call(
                "crm.deal.add",
                {
                    "fields": {"TITLE": f"{name} 50", "CATEGORY_ID": s.pipeline},
                    "params": no_events,
                },
            )
        )
    )
    s.made.append(f"{len(s.deals)} deals")
    s.comment = int(
        await client.call(
            "crm.timeline.comment.add",
            {"fields": {"ENTITY_ID": s.deals[0], "ENTITY_TYPE": "deal", "COMMENT": name}},
        )
    )
    s.spa_code_sent = f"b24kit_conformance_{s.tag}"
    spa = (
        await client.call(
            "crm.type.add",
            {"fields": {"title": name, "code": s.spa_code_sent, "isStagesEnabled": "Y"}},
        )
    )["type"]
    s.spa_id, s.spa_etid = int(spa["id"]), int(spa["entityTypeId"])
    s.made.append(f"smart process {s.spa_id} «{name}»")
    s.field_name = spa_uf_prefix(_id(s.spa_id)) + "B24KIT_CONF"
    made = (
        await client.call(
            "userfieldconfig.add",
            {
                "moduleId": "crm",
                "field": {
                    "entityId": spa_uf_entity(_id(s.spa_id)),
                    "fieldName": s.field_name,
                    "userTypeId": "enumeration",
                    "editFormLabel": {"en": name},
                    "enum": [{"value": "A", "xmlId": "A"}],
                },
            },
        )
    )["field"]
    s.field_id = int(made["id"])
    spa2 = (
        await client.call(
            "crm.type.add", {"fields": {"title": f"{name} 2", "code": f"{s.spa_code_sent}_2"}}
        )
    )["type"]
    s.spa2_id = int(spa2["id"])
    s.made.append(f"smart process {s.spa2_id} «{name} 2»")
    await client.call(
        "userfieldconfig.add",
        {
            "moduleId": "crm",
            "field": {
                "entityId": spa_uf_entity(_id(s.spa2_id)),
                "fieldName": spa_uf_prefix(_id(s.spa2_id)) + "B24KIT_CONF",
                "userTypeId": "string",
                "editFormLabel": {"en": name},
            },
        },
    )


async def _ours(
    client: B24Client, s: Scratch, known: bool = True
) -> tuple[list[int], list[int], list[int]]:
    """What is on the portal under this run's name: deal pipelines, smart processes, and
    the deals in those pipelines (found by name, so that what was made without an answer
    is found too). Every list is read whole."""
    name = _name(s)
    cats = [
        int(c["id"])
        for c in await read_all(client, "crm.category.list", {"entityTypeId": DEAL})
        if str(c.get("name", "")).startswith(name)
    ]
    if known:  # the ids set-up recorded, in case a name was changed
        cats = sorted({*cats, *(c for c in (s.pipeline, s.pipeline2) if c is not None)})
    types = [
        int(t["id"])
        for t in await read_all(client, "crm.type.list", {"order": {"id": "ASC"}})
        if str(t.get("title", "")).startswith(name)
    ]
    deals = (
        [
            int(d["ID"])
            for d in await read_all(
                client, "crm.deal.list", {"filter": {"@CATEGORY_ID": cats}, "select": ["ID"]}
            )
        ]
        if cats
        else []
    )
    return cats, types, deals


async def _clean_up(client: B24Client, s: Scratch) -> list[str]:
    """Remove what the run made, then read back; returns what is still there (or why the
    read-back failed). Every step runs whatever the one before it did."""

    async def attempt(method: str, params: dict[str, Any]) -> None:
        with contextlib.suppress(B24Error):  # judged by reading back below
            await client.call(method, params)

    try:
        cats, types, deals = await _ours(client, s)
    except B24Error:
        cats = [c for c in (s.pipeline, s.pipeline2) if c is not None]
        types = [t for t in (s.spa_id, s.spa2_id) if t is not None]
        deals = list(s.deals)
    for chunk in range(0, len(deals), 50):
        with contextlib.suppress(B24Error):
            await client.batch(
                {f"x{d}": ("crm.deal.delete", {"id": d}) for d in deals[chunk : chunk + 50]}
            )
    for spa in types:
        with contextlib.suppress(B24Error):
            rows = as_list(
                (
                    await client.call(
                        "userfieldconfig.list",
                        {"moduleId": "crm", "filter": {"entityId": spa_uf_entity(spa)}},
                    )
                ).get("fields")
            )
            for row in rows:
                if row.get("entityId") == spa_uf_entity(spa):
                    await attempt("userfieldconfig.delete", {"moduleId": "crm", "id": row["id"]})
        await attempt("crm.type.delete", {"id": spa})
    for cat in cats:
        await attempt("crm.category.delete", {"entityTypeId": DEAL, "id": cat})
    try:
        cats, types, deals = await _ours(client, s, known=False)
    except B24Error as exc:
        return [f"could not read back what is left ({_short(str(exc), 200)})"]
    left = [f"{len(deals)} deal(s): {', '.join(map(str, deals[:20]))}"] if deals else []
    left += [f"smart process {t}" for t in types] + [f"deal pipeline {c}" for c in cats]
    return left


async def run_conformance(
    client: B24Client, *, tag: str | None = None, only: list[str] | None = None
) -> Report:
    """Run every assumption's check (or those named in ``only``) in throwaway entities.
    A failed set-up is reported (``Report.setup_error``), never raised past the clean-up."""
    known = {a.id for a in ASSUMPTIONS}
    unknown = [name for name in only or [] if name not in known]
    if unknown:
        raise InputError(f"unknown assumption {unknown[0]!r}; known: {', '.join(sorted(known))}")
    scratch = Scratch(tag or secrets.token_hex(3))
    results: list[Result] = []
    setup_error = ""
    try:
        await _set_up(client, scratch)
    except B24Error as exc:
        setup_error = _short(str(exc), 300)
    if not setup_error:
        for assumption in ASSUMPTIONS:
            if only and assumption.id not in only:
                continue
            try:
                seen = await assumption.check(client, scratch)
            except B24Error as exc:
                seen = Seen(False, f"failed: {_short(str(exc), 200)}")
            results.append(Result(assumption, seen.held, seen.seen, seen.checked))
    left = await _clean_up(client, scratch)
    return Report(client.portal, results, left, setup_error)
