"""The blueprint: a company's CRM structure as data (``version: 1``).

Identity lives on the portal, so any machine can plan and apply: deal pipelines by name
(``previous_names`` for renames; b24kit also tags the ones it creates with
``originatorId=b24kit`` / ``originId=<code>``), stages by code (``STATUS_ID`` without the
pipeline prefix), fields by code (``UF_CRM_<CODE>``), smart processes by ``code``.
Codes of pipelines are local to the blueprint: links refer to them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from b24kit.portal.ids import DEAL_STAGE_ID_MAX

CODE = r"^[A-Z][A-Z0-9_]*$"
LOCAL = r"^[a-z][a-z0-9_]*$"
COLOR = re.compile(r"^#[0-9A-Fa-f]{6}$")
FIELD_TYPES = (
    "string",
    "integer",
    "double",
    "boolean",
    "enumeration",
    "datetime",
    "date",
    "money",
    "url",
    "address",
    "file",
    "employee",
    "crm_status",
    "crm",
)
# control and bidi characters, line and paragraph separators, invisible zero-width ones
# and lone surrogates (which no file can hold and no request can carry)
CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff"
    r"\ud800-\udfff]"
)
PORTAL_INT_MAX = 2_147_483_647  # the portal keeps sorts in a signed 32-bit column
STAGE_CODE_MAX = DEAL_STAGE_ID_MAX  # a deal stage id, prefix included, is cut to this
FIELD_CODE_MAX = 35  # "UF_CRM_" + "9999_" + 35 < 50, the portal's limit for field names


class Strict(BaseModel):
    # defer_build (start-up, issue 15 item 6): each model's validator is made when it is
    # first used, not as this module is imported; validating a Blueprint then builds one
    # schema holding every model it nests, instead of one validator per model class as
    # well (0.03 s of CPU off every command that reads a blueprint, validate included)
    model_config = ConfigDict(extra="forbid", frozen=False, defer_build=True)


def _printable(value: str) -> str:
    """No control or bidi characters: they would show a person one text and the portal
    another (terminal escapes, right-to-left overrides)."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X}")
    return value


def _not_blank(value: str) -> str:
    """A name of only spaces is no name: the portal trims it and refuses it as missing."""
    if value and not value.strip():
        raise ValueError("is blank: give it a name")
    return value


Text = Annotated[str, AfterValidator(_printable)]
# the length first: its error then speaks of characters
Name = Annotated[
    str, Field(min_length=1, max_length=255), AfterValidator(_printable), AfterValidator(_not_blank)
]
# numbers and switches are taken as YAML wrote them: `sort: true` or `default: "yes"` is a
# mistake, not 1 or True
Sort = Annotated[int, Field(ge=0, le=PORTAL_INT_MAX, strict=True)]
Flag = Annotated[bool, Field(strict=True)]


Labels = dict[Literal["ru", "en", "de", "ua", "kz"], Text]


class Stage(Strict):
    code: Annotated[
        str,
        Field(
            pattern=CODE,
            max_length=STAGE_CODE_MAX,
            description="STATUS_ID without the pipeline prefix",
        ),
    ]
    name: Name
    semantics: Literal["process", "success", "failure"] = "process"
    color: str | None = Field(default=None, description="#RRGGBB")
    sort: int | None = Field(
        default=None, ge=1, le=PORTAL_INT_MAX, strict=True, description="default: position x 10"
    )

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR.fullmatch(value):
            raise ValueError(f"colour {value!r} must be #RRGGBB")
        return value.upper() if value else value


class Pipeline(Strict):
    code: Annotated[str, Field(pattern=LOCAL, description="local name, used by links")]
    name: Name
    previous_names: list[Name] = Field(
        default_factory=list, description="names it had, so a rename keeps identity"
    )
    sort: Sort | None = None
    default: Flag = Field(default=False, description="the portal's default pipeline")
    stages: list[Stage] = Field(min_length=1)


class EnumValue(Strict):
    value: Annotated[Text, AfterValidator(_not_blank), Field(min_length=1)]
    xml_id: Text | None = None
    sort: Sort | None = None
    default: Flag = False


class CustomField(Strict):
    code: Annotated[
        str,
        Field(pattern=CODE, max_length=FIELD_CODE_MAX, description="UF_CRM_<CODE> on the portal"),
    ]
    type: Literal[FIELD_TYPES]  # type: ignore[valid-type]
    label: Labels | Text
    multiple: Flag = False
    mandatory: Flag = False
    sort: Sort | None = None
    values: list[EnumValue] | None = Field(default=None, description="enumeration items")
    settings: dict[str, Any] = Field(
        default_factory=dict, description="type settings, e.g. crm: {DEAL: Y}"
    )
    links: list[str] | None = Field(
        default=None,
        description="crm fields: entity types "
        "it links (deal, contact, company, or a smart process code)",
    )


class Relations(Strict):
    parents: list[str] = Field(
        default_factory=list,
        description="deal, contact, company or a smart process code whose items can be parents",
    )
    children: list[str] = Field(default_factory=list)


class Switches(Strict):
    categories: Flag = False
    stages: Flag = True
    client: Flag = False
    products: Flag = False
    begin_close_dates: Flag = False
    observers: Flag = False
    source: Flag = False
    use_in_userfield: Flag = True
    automation: Flag = False


class SmartProcess(Strict):
    code: Annotated[str, Field(pattern=LOCAL)]
    title: Name
    switches: Switches = Field(default_factory=Switches)
    relations: Relations = Field(default_factory=Relations)
    pipelines: list[Pipeline] = Field(default_factory=list)
    fields: list[CustomField] = Field(default_factory=list)


class Quote(Strict):
    """What a move records on the parent, once: the child's price at that moment and the
    moment itself (the estimate's quote, kept when the amounts change later)."""

    price: str | None = Field(default=None, description="parent field (money or double)")
    time: str | None = Field(default=None, description="parent field (datetime or date)")


class Move(Strict):
    child_stage: str
    parent_stage: str
    record: Quote | None = Field(
        default=None, description="parent fields written once when this move happens"
    )


class LinkEnd(Strict):
    pipeline: str
    stage: str


class ParentEnd(Strict):
    """The parent end of a link: one pipeline, or several (every sales direction sends its
    estimates to logistics), each with the trigger stage and the moves' stages under the
    same codes."""

    pipeline: str | None = Field(default=None, description="the parent pipeline")
    pipelines: list[str] | None = Field(
        default=None, min_length=1, description="several parent pipelines (instead of pipeline)"
    )
    stage: str = Field(description="the stage that creates the child, in each parent pipeline")

    @model_validator(mode="after")
    def _one_way(self) -> ParentEnd:
        if (self.pipeline is None) == (self.pipelines is None):
            raise ValueError("name the parent pipeline once: pipeline, or a list as pipelines")
        return self

    @property
    def codes(self) -> list[str]:
        """Every parent pipeline, in the blueprint's order."""
        return list(self.pipelines) if self.pipelines is not None else [str(self.pipeline)]


class Link(Strict):
    """A parent/child rule between pipelines (pilot 1: sales -> logistics estimate). A
    link may take several parent pipelines; a parent pipeline may have several links
    (logistics and engineering), each with its own fields and moves."""

    name: Annotated[str, Field(pattern=LOCAL)]
    parent: ParentEnd = Field(description="pipeline(s) and the stage that creates the child")
    child: LinkEnd = Field(description="pipeline and stage the child is created in")
    copy_fields: list[str] = Field(default_factory=list)
    parent_field: str | None = Field(default=None, description="parent field holding the child")
    child_field: str = Field(description="child field holding the parent (crm type)")
    mirror_field: str | None = Field(
        default=None, description="parent field that shows the child's stage"
    )
    moves: list[Move] = Field(default_factory=list)
    max_children: int = Field(default=1, ge=1, strict=True)


class DirectoryRecord(Strict):
    """Deal fields of the feeding link's child (the estimate) that record which directory
    entry was used, at what price and how well (blueprint field codes, or a system date
    field for ``date``)."""

    contractor: str = Field(description="crm field linking the directory's smart process")
    in_house: str | None = Field(
        default=None, description="yes/no field: done in house (own vehicles), no entry needed"
    )
    price: str = Field(description="the entry's price on this record (double, integer or money)")
    rating: str | None = Field(
        default=None, description="quality rating: an enumeration whose values start with a number"
    )
    notes: str | None = Field(default=None, description="notes on this use (string)")
    typed_name: str | None = Field(
        default=None, description="a new entry's name typed by hand (string); sync files it"
    )
    typed_phone: str | None = Field(
        default=None, description="a new entry's phone typed by hand (string); sync files it"
    )
    date: str = Field(
        default="BEGINDATE", description="when it was used: BEGINDATE, CLOSEDATE or a date field"
    )


class DirectoryEntry(Strict):
    """Fields of the directory's smart process: the phone entries are matched by, and the
    statistics sync keeps current from the records."""

    phone: str = Field(description="string field; entries are found and merged by phone")
    notes: str = Field(description="string field; a merged duplicate is noted here")
    times_used: str | None = Field(default=None, description="integer: records linked to it")
    last_price: str | None = Field(default=None, description="number: the latest record's price")
    average_rating: str | None = Field(default=None, description="number: mean of rated records")
    last_used: str | None = Field(default=None, description="date: the latest record's date")


class Directory(Strict):
    """A smart process filled from the children of a link (pilot 2: the contractors of the
    logistics estimates): sync files typed-in entries, merges duplicates, keeps stats."""

    name: Annotated[str, Field(pattern=LOCAL)]
    smart_process: str = Field(description="code of the smart process holding the entries")
    link: str = Field(description="the link whose children record an entry")
    record: DirectoryRecord
    entry: DirectoryEntry
    required_from: str | None = Field(
        default=None,
        description="child stage from which an entry (or in_house) and a price are required",
    )
    duplicate_stage: str = Field(
        description="stage of the smart process a merged duplicate is moved to (never deleted)"
    )


class DealSection(Strict):
    pipelines: list[Pipeline] = Field(default_factory=list)
    fields: list[CustomField] = Field(default_factory=list)


class Blueprint(Strict):
    version: Literal[1]
    name: str | None = None
    description: str | None = None
    include: list[str] = Field(default_factory=list)
    variables: dict[str, str] = Field(default_factory=dict)
    deal: DealSection = Field(default_factory=DealSection)
    smart_processes: list[SmartProcess] = Field(default_factory=list)
    links: list[Link] = Field(default_factory=list)
    directories: list[Directory] = Field(default_factory=list)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: Any) -> Any:
        """1 as a number: `true` and `1.0` equal 1 to Python, not to a person reading it."""
        if type(value) is not int:
            raise ValueError(f"must be the number 1, not {value!r}")
        return value


def json_schema() -> dict[str, Any]:
    schema = Blueprint.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "b24kit blueprint"
    return schema
