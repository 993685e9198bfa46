"""CSV history import: one row per event, for backfills.

Default columns: `id,type,time,subject` (required), `source` (optional) and `data.<field>`
for data fields, dots nesting objects (`data.location.mosque_id`). `score`, `scale` and
`wrap_up_seconds` become integers; an empty cell leaves the attribute out. A mapping file
(`load_mapping`) adapts files with other headers. Rows stream one at a time (constant memory).
"""

from __future__ import annotations

import csv
import json
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from producers.queue_log import AdapterError
from tawasul.infra.pseudonymise import PseudonymiseError, Pseudonymiser

DEFAULT_SOURCE = "/import/csv"
REQUIRED = ("id", "type", "time", "subject")
TOP_LEVEL = (*REQUIRED, "source", "specversion", "datacontenttype")
INTEGER_FIELDS = frozenset({"score", "scale", "wrap_up_seconds"})
ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:tawasul:adapter:csv")
PROGRESS_STEP_BYTES = 64 * 1024

ProgressCallback = Callable[[int, int], None]

_DATA_PATH = re.compile(r"^data(\.[A-Za-z_][A-Za-z0-9_]*)+$")
_BAD_BYTE = re.compile("[\udc80-\udcff]")
_MAPPING_KEYS = frozenset({"columns", "constants", "values", "pseudonymise", "timezone", "delimiter", "derive_id"})


class CsvImportError(Exception):
    """A mapping file or import option is unusable (raised before any row is read)."""


def _check_attribute(name: str, where: str) -> str:
    if name in TOP_LEVEL or _DATA_PATH.match(name):
        return name
    raise CsvImportError(f"{where}: {name!r} is not an event attribute (one of {', '.join(TOP_LEVEL)} or data.<field>)")


@dataclass(frozen=True)
class CsvMapping:
    """How the columns of a CSV file become event attributes.

    `columns`: CSV header -> attribute (`subject`, `data.channel`, ...); columns not listed
    are ignored. `constants`: attribute -> value set on every row. `values`: attribute ->
    {CSV value: event value}. `pseudonymise`: attributes whose values are replaced by their
    keyed hash. `timezone`: zone for times written without an offset. `derive_id`: build the
    id from the row's content when the file has no id column.
    """

    columns: Mapping[str, str]
    constants: Mapping[str, str] = field(default_factory=dict)
    values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    pseudonymise: frozenset[str] = frozenset()
    timezone: str | None = None
    delimiter: str = ","
    derive_id: bool = False

    def __post_init__(self) -> None:
        for header, attribute in self.columns.items():
            _check_attribute(attribute, f"column {header!r}")
        for attribute in (*self.constants, *self.values, *self.pseudonymise):
            _check_attribute(attribute, "mapping")
        if len(self.delimiter) != 1:
            raise CsvImportError("delimiter must be a single character")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise CsvImportError(f"unknown time zone {self.timezone!r}") from None
        object.__setattr__(self, "columns", MappingProxyType(dict(self.columns)))
        object.__setattr__(self, "constants", MappingProxyType(dict(self.constants)))
        object.__setattr__(
            self, "values", MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.values.items()})
        )


def _string_map(value: object, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise CsvImportError(f"{where} must be a mapping")
    return {str(k).strip(): str(v).strip() for k, v in value.items()}


def load_mapping(path: str | Path) -> CsvMapping:
    """A mapping file: either a flat YAML mapping `CSV header: attribute`, or a mapping with
    `columns` (that mapping) and optionally `constants`, `values`, `pseudonymise` (a list),
    `timezone`, `delimiter`, `derive_id`."""
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise CsvImportError(f"cannot read mapping file {path}: {exc}") from None
    if not isinstance(loaded, dict) or not loaded:
        raise CsvImportError(f"{path}: expected a non-empty YAML mapping")
    if not isinstance(loaded.get("columns"), dict):
        return CsvMapping(columns=_string_map(loaded, str(path)))
    unknown = sorted(set(map(str, loaded)) - _MAPPING_KEYS)
    if unknown:
        raise CsvImportError(f"{path}: unknown keys {', '.join(unknown)}")
    pseudonymise = loaded.get("pseudonymise", [])
    if not isinstance(pseudonymise, list):
        raise CsvImportError(f"{path}: pseudonymise must be a list of attributes")
    values = loaded.get("values", {})
    if not isinstance(values, dict):
        raise CsvImportError(f"{path}: values must be a mapping")
    return CsvMapping(
        columns=_string_map(loaded["columns"], f"{path}: columns"),
        constants=_string_map(loaded.get("constants", {}), f"{path}: constants"),
        values={str(k): _string_map(v, f"{path}: values.{k}") for k, v in values.items()},
        pseudonymise=frozenset(map(str, pseudonymise)),
        timezone=str(loaded["timezone"]) if loaded.get("timezone") else None,
        delimiter=str(loaded.get("delimiter", ",")),
        derive_id=bool(loaded.get("derive_id", False)),
    )


class _ByteCountingLines:
    """Physical lines of a binary file decoded as UTF-8 (bad bytes kept as surrogates so the
    row holding them can be reported), the BOM removed, counting the bytes consumed."""

    def __init__(self, handle: Iterable[bytes]) -> None:
        self._handle = iter(handle)
        self.bytes_read = 0
        self._first = True

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = next(self._handle)
        self.bytes_read += len(raw)
        if self._first:
            self._first = False
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        return raw.decode("utf-8", errors="surrogateescape")


def _plan_columns(header: list[str], mapping: CsvMapping | None) -> list[str | None]:
    """The attribute of each column (None = ignored); raises CsvImportError on a bad header."""
    names = [cell.strip() for cell in header]
    if mapping is None:
        unknown = [name for name in names if not (name in TOP_LEVEL or _DATA_PATH.match(name))]
        if unknown:
            raise CsvImportError(
                f"unknown column(s) {', '.join(map(repr, unknown))}: use id, type, time, subject, source "
                "and data.<field>, or give a mapping file"
            )
        plan: list[str | None] = list(names)
    else:
        plan = [mapping.columns.get(name) for name in names]
    chosen = [attribute for attribute in plan if attribute]
    duplicates = sorted({attribute for attribute in chosen if chosen.count(attribute) > 1})
    if duplicates:
        raise CsvImportError(f"more than one column for {', '.join(duplicates)}")
    provided = set(chosen) | set(mapping.constants if mapping else ())
    if mapping is not None and mapping.derive_id:
        provided.add("id")
    missing = [name for name in REQUIRED if name not in provided]
    if missing:
        raise CsvImportError(f"missing required column(s): {', '.join(missing)}")
    paths = sorted(attribute for attribute in provided if attribute.startswith("data."))
    for shorter, longer in zip(paths, paths[1:], strict=False):
        if longer.startswith(shorter + "."):
            raise CsvImportError(f"{shorter} cannot be both a value and an object holding {longer}")
    return plan


def _convert(attribute: str, value: str, mapping: CsvMapping | None, pseudonymiser: Pseudonymiser | None) -> Any:
    if mapping is not None:
        value = mapping.values.get(attribute, {}).get(value, value)
        if attribute in mapping.pseudonymise:
            if pseudonymiser is None:
                raise ValueError(f"{attribute} needs pseudonymisation but no key was given")
            return pseudonymiser.ref(value)
        if attribute == "time" and mapping.timezone:
            return _with_zone(value, mapping.timezone)
    if attribute.rsplit(".", 1)[-1] in INTEGER_FIELDS and attribute.startswith("data."):
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"{attribute} is not an integer") from None
    return value


def _with_zone(value: str, timezone: str) -> str:
    """An ISO 8601 time with the mapping's zone added when it has no offset of its own."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("time is not an ISO 8601 date and time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(timezone))
    return parsed.isoformat()


def _set_data(data: dict[str, Any], attribute: str, value: Any) -> None:
    *parents, leaf = attribute.split(".")[1:]
    target = data
    for name in parents:
        target = target.setdefault(name, {})
    target[leaf] = value


def _derived_id(event: Mapping[str, Any]) -> str:
    content = json.dumps({k: v for k, v in event.items() if k != "id"}, sort_keys=True, ensure_ascii=False)
    return str(uuid.uuid5(ID_NAMESPACE, content))


def _row_event(
    cells: list[str],
    plan: list[str | None],
    mapping: CsvMapping | None,
    pseudonymiser: Pseudonymiser | None,
    source: str,
) -> dict[str, Any]:
    """One row -> event dict; raises ValueError with a reason naming the column or attribute."""
    assigned: dict[str, str] = dict(mapping.constants) if mapping else {}
    for attribute, cell in zip(plan, cells, strict=True):
        if attribute is None:
            continue
        if _BAD_BYTE.search(cell):
            raise ValueError(f"{attribute} is not valid UTF-8")
        value = cell.strip()
        if value:
            assigned[attribute] = value
    top: dict[str, Any] = {"specversion": "1.0", "id": "", "source": source, "type": "", "time": "", "subject": ""}
    data: dict[str, Any] = {}
    for attribute, value in assigned.items():
        converted = _convert(attribute, value, mapping, pseudonymiser)
        if attribute.startswith("data."):
            _set_data(data, attribute, converted)
        else:
            top[attribute] = converted
    top.setdefault("datacontenttype", "application/json")
    top["data"] = data
    if not top["id"] and mapping is not None and mapping.derive_id:
        top["id"] = _derived_id(top)
    empty = [name for name in REQUIRED if not top[name]]
    if empty:
        raise ValueError(f"required attribute(s) {', '.join(empty)} empty")
    return top


def read_csv_events(
    path: str | Path,
    mapping: CsvMapping | str | Path | None = None,
    progress: ProgressCallback | None = None,
    *,
    source: str = DEFAULT_SOURCE,
    pseudonymiser: Pseudonymiser | None = None,
) -> Iterator[tuple[int, dict[str, Any] | AdapterError]]:
    """`(line_no, event dict)` per good row and `(line_no, AdapterError)` per bad one.

    `line_no` is the file line where the row starts (the header is line 1). A bad header
    yields one error and ends the import; an empty file yields an error; a file with a header
    only yields nothing. `progress(bytes_read, total_bytes)` is called as the file is read and
    once at the end. Raises `CsvImportError` at once for an unusable mapping or options.
    """
    chosen = load_mapping(mapping) if isinstance(mapping, str | Path) else mapping
    if chosen is not None and chosen.pseudonymise and pseudonymiser is None:
        raise CsvImportError("the mapping asks for pseudonymisation: give a pseudonymiser (TAWASUL_PSEUDONYM_KEY)")
    return _read(Path(path), chosen, progress, source, pseudonymiser)


def _read(
    path: Path,
    mapping: CsvMapping | None,
    progress: ProgressCallback | None,
    source: str,
    pseudonymiser: Pseudonymiser | None,
) -> Iterator[tuple[int, dict[str, Any] | AdapterError]]:
    with path.open("rb") as handle:
        total = os.fstat(handle.fileno()).st_size
        lines = _ByteCountingLines(handle)
        reader = csv.reader(lines, delimiter=mapping.delimiter if mapping else ",")
        header = next(reader, None)
        if header is None:
            yield 1, AdapterError(1, "empty file: no header row")
            return
        try:
            if any(_BAD_BYTE.search(cell) for cell in header):
                raise CsvImportError("the header is not valid UTF-8")
            plan = _plan_columns(header, mapping)
        except CsvImportError as exc:
            yield 1, AdapterError(1, f"header: {exc}")
            return
        reported = 0
        while True:
            line_no = reader.line_num + 1
            try:
                cells = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                yield line_no, AdapterError(line_no, f"not a CSV row: {exc}")
                continue
            if any(cell.strip() for cell in cells):
                if len(cells) != len(plan):
                    yield line_no, AdapterError(line_no, f"expected {len(plan)} columns, found {len(cells)}")
                else:
                    try:
                        yield line_no, _row_event(cells, plan, mapping, pseudonymiser, source)
                    except (ValueError, PseudonymiseError) as exc:
                        yield line_no, AdapterError(line_no, str(exc))
            if progress is not None and lines.bytes_read - reported >= PROGRESS_STEP_BYTES:
                reported = lines.bytes_read
                progress(reported, total)
        if progress is not None:
            progress(lines.bytes_read, total)
