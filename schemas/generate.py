"""Regenerate the JSON Schema files: `python -m schemas.generate [--check]`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from schemas.json_schemas import render, schema_documents

SCHEMA_DIR: Final = Path(__file__).resolve().parent / "json"
"""Where the committed schema files live (`schemas/json/`)."""


def expected_files() -> dict[str, str]:
    """File name -> the text the models generate."""
    return {name: render(schema) for name, schema in schema_documents().items()}


def drift(directory: Path = SCHEMA_DIR) -> list[str]:
    """Names of files that are missing, stale or left over in `directory`."""
    expected = expected_files()
    present = {path.name for path in directory.glob("*.schema.json")}
    out = sorted(present - expected.keys())
    for name, text in sorted(expected.items()):
        path = directory / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            out.append(name)
    return out


def write(directory: Path = SCHEMA_DIR) -> list[str]:
    """Bring `directory` in line with the models; returns the names it changed."""
    changed = drift(directory)
    expected = expected_files()
    directory.mkdir(parents=True, exist_ok=True)
    for name in changed:
        path = directory / name
        if name in expected:
            path.write_text(expected[name], encoding="utf-8")
        else:
            path.unlink()
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m schemas.generate", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report drift; exit 1 if any")
    parser.add_argument("--dir", type=Path, default=SCHEMA_DIR, help="target directory")
    args = parser.parse_args(argv)
    if args.check:
        stale = drift(args.dir)
        for name in stale:
            print(f"out of date: {name}", file=sys.stderr)
        return 1 if stale else 0
    for name in write(args.dir):
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
