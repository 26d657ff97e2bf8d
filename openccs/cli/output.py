"""How commands print: listings as tables or JSON (`-o table|json`, alike everywhere),
records and API answers as JSON."""

from __future__ import annotations

import argparse
import json
from typing import Any

FORMATS = ("table", "json")


def output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        help="table or json (listings default to table, created things to json)",
    )


def print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), flush=True)


def print_table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
    if not rows:
        print("(none)")
        return
    cols = columns or list(rows[0])
    cells = [[_cell(r.get(c)) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.upper().ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else str(value)


def print_rows(
    args: argparse.Namespace, rows: list[dict[str, Any]], columns: list[str] | None = None
) -> None:
    """A listing: a table of `columns` (default), or with `-o json` the rows whole."""
    if _format(args, "table") == "json":
        print_json(rows)
    else:
        print_table(rows, columns)


def print_record(args: argparse.Namespace, record: dict[str, Any]) -> None:
    """One thing made or shown: JSON (default), or with `-o table` a field/value table."""
    if _format(args, "json") == "table":
        print_table([{"field": k, "value": v} for k, v in record.items()])
    else:
        print_json(record)


def print_data_table(data: Any) -> None:
    """An action's `data` as a table: its first list of objects, else its fields."""
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if lists and all(isinstance(x, dict) for x in lists[0]):
            print_table(lists[0])
            return
        print_table([{"field": k, "value": v} for k, v in data.items()])
    elif isinstance(data, list):
        print_table(data)
    else:
        print(data)


def _format(args: argparse.Namespace, default: str) -> str:
    return getattr(args, "output", None) or default
