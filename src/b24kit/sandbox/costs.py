"""What each call costs the operating-time budget: named presets, each figure sourced.

The sandbox's own CPU time is tiny, so every call is charged in *portal seconds* from a
preset (``SandboxConfig.cost_model``, ``b24kit sandbox serve --cost-model NAME``). The time
charged is what the call adds to ``time.operating`` (the portal accumulates a call's
``processing`` there: the docs' ``crm-item-add.md`` example answers ``processing``
1.8328988 s with ``operating`` 1.8328571 s on the first call of its window) and, with
``--wall-time``, how long the answer takes. docs/sandbox.md tabulates every constant with
its source; keep the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

WRITE_VERBS = frozenset({"add", "update", "delete", "set"})


@dataclass(frozen=True)
class CostModel:
    """Portal seconds per call, by method family."""

    name: str
    call: float  # a get, fields, server.time, ...: anything not a write and not a list
    write: float  # *.add, *.update, *.delete, *.set
    page: float  # one list page (up to 50 rows) without counting (start=-1)
    per_counted_row: float  # each row a list counts for ``total`` (start >= 0)
    per_skipped_row: float  # each row an offset (start=N) walks past
    source: str  # one line: where the figures come from

    def base(self, method: str) -> float:
        """What a call of ``method`` costs before counting and skipping."""
        name = method.lower()
        if name.endswith(".list"):
            return self.page
        if name.rsplit(".", 1)[-1] in WRITE_VERBS:
            return self.write
        return self.call

    def rows(self, counted: int, skipped: int) -> float:
        """What a list page adds for the rows it counted and skipped."""
        return counted * self.per_counted_row + skipped * self.per_skipped_row


# settings/performance/huge-data.md: 2,387,743 rows, the same crm.item.list request (50 rows,
# select id/title/createdTime) counted (start=0): processing 49.899916887283 s (line 107),
# and with start=-1: processing 0.068500995635986 s (line 121).
DOCS_ROWS = 2_387_743
DOCS_COUNTED_PAGE = 49.899916887283
DOCS_KEYSET_PAGE = 0.068500995635986
# fast_bitrix24 tests/real_responses (answers recorded from real portals):
# crm_contact_add_batch.py line 14, crm.contact.add inside a batch: processing 0.0936680 s;
# crm_get_batch_mix_success_and_errors.py line 27, crm.lead.get inside a batch: 0.0058861 s
# (call_single_success.py line 64, a crm.lead.get alone: 0.0310550 s).
REAL_WRITE = 0.09366798400878906
REAL_CALL = 0.005886077880859375
# bitrix24-php-sdk docs/RU/Core/Batch/batch-read-mode.md (mesilov/bitrix24-php-sdk), cloud
# portal with 100,000 contacts, 50 rows, select ID/NAME/LAST_NAME/DATE_CREATE/PHONE/EMAIL,
# ordered: 0.3786 s counted, 0.3125 s without counting (client-side seconds).
PHPSDK_ROWS = 100_000
PHPSDK_COUNTED = 0.3786
PHPSDK_UNCOUNTED = 0.3125

_DOCS_PER_ROW = (DOCS_COUNTED_PAGE - DOCS_KEYSET_PAGE) / DOCS_ROWS  # 20.87 µs
DOCS = CostModel(
    name="docs",
    call=REAL_CALL,
    write=REAL_WRITE,
    page=DOCS_KEYSET_PAGE,
    per_counted_row=_DOCS_PER_ROW,
    per_skipped_row=_DOCS_PER_ROW,
    source="official docs, settings/performance/huge-data.md (2.4M leads)",
)

# the php-sdk measurement differs from the docs only in what counting a row costs
_PHPSDK_PER_ROW = (PHPSDK_COUNTED - PHPSDK_UNCOUNTED) / PHPSDK_ROWS  # 0.66 µs
PHPSDK = replace(
    DOCS,
    name="phpsdk",
    per_counted_row=_PHPSDK_PER_ROW,
    per_skipped_row=_PHPSDK_PER_ROW,
    source="bitrix24-php-sdk batch-read-mode benchmark (100k contacts, narrow select)",
)

PRESETS: dict[str, CostModel] = {m.name: m for m in (DOCS, PHPSDK)}
DEFAULT = DOCS.name


class UnknownCostModel(ValueError):
    pass


def preset(name: str) -> CostModel:
    try:
        return PRESETS[name]
    except KeyError:
        raise UnknownCostModel(
            f"unknown cost model {name!r}; use one of: {', '.join(PRESETS)}"
        ) from None
