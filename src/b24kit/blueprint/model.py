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

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
PORTAL_INT_MAX = 2_147_483_647  # the portal keeps sorts in a signed 32-bit column
STAGE_CODE_MAX = DEAL_STAGE_ID_MAX  # a deal stage id, prefix included, is cut to this
FIELD_CODE_MAX = 35  # "UF_CRM_" + "9999_" + 35 < 50, the portal's limit for field names


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def _printable(value: str) -> str:
    """No control or bidi characters: they would show a person one text and the portal
    another (terminal escapes, right-to-left overrides)."""
    found = CONTROL.search(value)
    if found:
        raise ValueError(f"contains the control character U+{ord(found.group()):04X}")
    return value


Text = Annotated[str, AfterValidator(_printable)]
Sort = Annotated[int, Field(ge=0, le=PORTAL_INT_MAX)]


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
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    semantics: Literal["process", "success", "failure"] = "process"
    color: str | None = Field(default=None, description="#RRGGBB")
    sort: int | None = Field(
        default=None, ge=1, le=PORTAL_INT_MAX, description="default: position x 10"
    )

    @field_validator("color")
    @classmethod
    def _color(cls, value: str | None) -> str | None:
        if value is not None and not COLOR.fullmatch(value):
            raise ValueError(f"colour {value!r} must be #RRGGBB")
        return value.upper() if value else value


class Pipeline(Strict):
    code: Annotated[str, Field(pattern=LOCAL, description="local name, used by links")]
    name: Annotated[Text, Field(min_length=1, max_length=255)]
    previous_names: list[Text] = Field(
        default_factory=list, description="names it had, so a rename keeps identity"
    )
    sort: Sort | None = None
    default: bool = Field(default=False, description="the portal's default pipeline")
    stages: list[Stage] = Field(min_length=1)


class EnumValue(Strict):
    value: Annotated[Text, Field(min_length=1)]
    xml_id: str | None = None
    sort: Sort | None = None
    default: bool = False


class CustomField(Strict):
    code: Annotated[
        str,
        Field(pattern=CODE, max_length=FIELD_CODE_MAX, description="UF_CRM_<CODE> on the portal"),
    ]
    type: Literal[FIELD_TYPES]  # type: ignore[valid-type]
    label: Labels | Text
    multiple: bool = False
    mandatory: bool = False
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
    categories: bool = False
    stages: bool = True
    client: bool = False
    products: bool = False
    begin_close_dates: bool = False
    observers: bool = False
    source: bool = False
    use_in_userfield: bool = True
    automation: bool = False


class SmartProcess(Strict):
    code: Annotated[str, Field(pattern=LOCAL)]
    title: Annotated[Text, Field(min_length=1, max_length=255)]
    switches: Switches = Field(default_factory=Switches)
    relations: Relations = Field(default_factory=Relations)
    pipelines: list[Pipeline] = Field(default_factory=list)
    fields: list[CustomField] = Field(default_factory=list)


class Move(Strict):
    child_stage: str
    parent_stage: str


class LinkEnd(Strict):
    pipeline: str
    stage: str


class Link(Strict):
    """A parent/child rule between two pipelines (pilot 1: sales -> logistics estimate)."""

    name: Annotated[str, Field(pattern=LOCAL)]
    parent: LinkEnd = Field(description="pipeline and the stage that creates the child")
    child: LinkEnd = Field(description="pipeline and stage the child is created in")
    copy_fields: list[str] = Field(default_factory=list)
    parent_field: str | None = Field(default=None, description="parent field holding the child")
    child_field: str = Field(description="child field holding the parent (crm type)")
    mirror_field: str | None = Field(
        default=None, description="parent field that shows the child's stage"
    )
    moves: list[Move] = Field(default_factory=list)
    max_children: int = Field(default=1, ge=1)


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


def json_schema() -> dict[str, Any]:
    schema = Blueprint.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "b24kit blueprint"
    return schema
