"""Downloads: tables as CSV."""
from __future__ import annotations

import csv
import io


def to_csv(rows: list[dict]) -> str:
    """A list of flat dicts as CSV text, columns in first-seen order."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
