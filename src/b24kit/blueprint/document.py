"""A YAML document with the file, line and column of every value, and the issues found
in it: what the loader makes and the checks read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from b24kit.errors import InputError, one_line

PathKey = tuple[str | int, ...]


@dataclass(frozen=True)
class Mark:
    file: str
    line: int
    column: int


@dataclass(frozen=True)
class BlueprintIssue:
    mark: Mark
    message: str

    def __str__(self) -> str:
        return one_line(f"{self.mark.file}:{self.mark.line}:{self.mark.column}: {self.message}")


class BlueprintError(InputError):
    def __init__(self, issues: list[BlueprintIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


@dataclass
class Document:
    data: Any
    marks: dict[PathKey, Mark] = field(default_factory=dict)

    def mark(self, path: PathKey, fallback: Mark | None = None) -> Mark:
        probe = tuple(path)
        while probe:
            if probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), fallback or Mark("?", 1, 1))
