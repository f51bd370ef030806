"""The mapping file: which sheet columns feed which fields of which entities.

version: 1
blueprint: ../blueprints/company.yaml     # pipeline, stage and field codes come from it
source: {csv: projects.csv, header_rows: 1}        # or xlsx: / sheet: URL-or-key
originator: legacy-projects                # ORIGINATOR_ID on every deal it makes
row_id: "№"                                # a stable row id column (default: row number)
users: {Иванов: 5, Петрова: 7}             # names in the sheet -> portal user ids
parent:
  pipeline: sales_turnkey
  title: "{Что везём}"                      # a template over columns
  stage: {column: Статус, default: NEW, values: {ESTIMATE: [оценить, считаем]}}
  fields:
    OPPORTUNITY: {column: Цена, parse: money}
    BEGINDATE: {column: Дата, parse: date}
    ASSIGNED_BY_ID: {column: Менеджер, parse: user}
contact: {name: Клиент, phone: Телефон, email: Email,   # ООО/ИП... in name: a company
          person: Контактное лицо}          # an organisation's contact person
contractor: {type: contractors, title: Подрядчик, phone: Телефон подрядчика,
             fields: {PRICE: {column: Стоимость, parse: money}}}
children:
  - link: estimate                          # a link of the blueprint: pipeline and fields
    when: [Логист, Подрядчик]              # created when any of these is filled
    title: "Логистика: {Что везём}"
    contractor: true                        # tie the contractor to this child
    fields: {ASSIGNED_BY_ID: {column: Логист, parse: user}}
comment: Комментарий                        # added to the parent's timeline

A draft of ``migrate init`` holds ``TODO`` where a person must decide (``Сидоренко: TODO``
under users, the sheet words it could not match under a ``TODO:`` key of a value map);
``migrate run`` refuses such a file, listing each TODO at its line (b24kit.migrate.todo).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

PARSERS = ("text", "money", "date", "phone", "email", "yes_no", "number", "user", "enum")


# a title template names the sheet's columns in braces: "{Клиент}: {Что везём}"
TEMPLATE = re.compile(r"\{([^{}]+)\}")
# numbers and switches as YAML wrote them: `required: "yes"` or a user id `true` is a mistake
Flag = Annotated[bool, Field(strict=True)]


def _template(text: str) -> str:
    """A title template: every brace opens or closes a {Column}; a stray one would be
    written into every title."""
    if "{" in TEMPLATE.sub("", text) or "}" in TEMPLATE.sub("", text):
        raise ValueError(
            f"{text!r}: a brace that is not part of a {{Column}}: name a column as {{Column}}"
        )
    return text


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(Strict):
    csv: str | None = None
    encoding: str | None = Field(
        default=None, description="the CSV file's encoding (default: UTF-8, cp1251 or KOI8-R)"
    )
    xlsx: str | None = None
    sheet: str | None = Field(default=None, description="Google Sheet URL or key")
    worksheet: str | None = None
    header_rows: Annotated[int, Field(ge=1, le=3, strict=True)] = 1

    @model_validator(mode="after")
    def _one_source(self) -> Source:
        named = [key for key in ("csv", "xlsx", "sheet") if getattr(self, key)]
        if len(named) != 1:
            raise ValueError(
                "name the sheet once: one of csv, xlsx or sheet"
                + (f", not {' and '.join(named)}" if named else "")
            )
        return self


class Column(Strict):
    column: str
    parse: Literal[PARSERS] = "text"  # type: ignore[valid-type]
    values: dict[str, list[str]] | None = Field(
        default=None, description="enum: code (or enumeration XML_ID) -> words in the sheet"
    )
    required: Flag = False
    negative: Flag = Field(
        default=False, description="money, number: a minus sign is allowed (refused otherwise)"
    )

    @model_validator(mode="after")
    def _values_for_enum(self) -> Column:
        if self.values is not None and self.parse != "enum":
            raise ValueError(f"values are read only with parse: enum, not {self.parse}")
        if self.negative and self.parse not in ("money", "number"):
            raise ValueError(f"negative is read only with parse: money or number, not {self.parse}")
        return self


class StageRule(Strict):
    column: str | None = None
    default: str
    values: dict[str, list[str]] = Field(
        default_factory=dict, description="stage code -> words in the sheet"
    )


class Route(Strict):
    """A row's pipeline from a column (issue 10, item 4), as stages are: pipeline code ->
    the words the sheet writes for it. An empty cell takes ``pipeline``; an unknown word
    rejects the row."""

    column: str
    values: dict[str, list[str]] = Field(description="pipeline code -> words in the sheet")


class DealRule(Strict):
    pipeline: str = Field(description="the pipeline code (the default one, with route)")
    route: Route | None = None
    title: str = Field(description="template, e.g. '{Клиент}: {Что везём}'")
    stage: StageRule
    fields: dict[str, Column] = Field(default_factory=dict)

    @property
    def pipelines(self) -> list[str]:
        """Every pipeline a row may go to: the default one first."""
        routed = list(self.route.values) if self.route else []
        return [self.pipeline, *[p for p in routed if p != self.pipeline]]

    _title = field_validator("title")(_template)


class ContactRule(Strict):
    """The client's columns. A client name that names an organisation (ООО, ИП, LLC...)
    makes a company, as the ``company`` column always does; ``person`` is then its contact
    person. A person's name makes a contact."""

    name: str | None = Field(default=None, description="the client: a person or an organisation")
    phone: str | None = None
    email: str | None = None
    company: str | None = Field(default=None, description="the client's organisation")
    person: str | None = Field(default=None, description="the organisation's contact person")
    inn: str | None = Field(default=None, description="the client's INN: groups rows sharing it")


class ContractorRule(Strict):
    type: str = Field(description="smart process code in the blueprint")
    title: str
    phone: str | None = None
    phone_field: str = "PHONE"
    fields: dict[str, Column] = Field(default_factory=dict)


class ChildRule(Strict):
    link: str = Field(description="a link name of the blueprint")
    when: list[str] = Field(
        min_length=1, description="columns: the child is made when any is filled"
    )
    title: str
    stage: StageRule | None = None
    contractor: Flag = False
    fields: dict[str, Column] = Field(default_factory=dict)

    _title = field_validator("title")(_template)


class RowRules(Strict):
    """What makes a row a project (issue 10, item 2)."""

    require_any: list[str] | None = Field(
        default=None,
        description="a row is a project when one of these columns is filled (default: the "
        "contact's name, company and phone columns: a client name or a phone)",
    )
    require: list[str] = Field(
        default_factory=list, description="columns every project row must fill"
    )


class Mapping(Strict):
    version: Literal[1]
    blueprint: str
    source: Source
    originator: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.:-]+$")]
    row_id: str | None = None
    users: dict[str, Annotated[int, Field(ge=0, strict=True)]] = Field(default_factory=dict)
    parent: DealRule
    contact: ContactRule = Field(default_factory=ContactRule)
    contractor: ContractorRule | None = None
    children: list[ChildRule] = Field(default_factory=list)
    comment: str | None = None
    rows: RowRules = Field(default_factory=RowRules)
    # the file the mapping was read from, with each value's line (set by load_mapping)
    _document: Any = PrivateAttr(default=None)

    @property
    def document(self) -> Any:
        return self._document


def mapping_schema() -> dict[str, Any]:
    schema = Mapping.model_json_schema()
    schema["title"] = "b24kit migration mapping"
    return schema
