"""Text cells of CSV files people open in a spreadsheet, made safe from formula injection.

A predicted CSV holds texts and class names that someone else chose (the input file, the run
folder). Excel, LibreOffice and Google Sheets run a cell starting with `=`, `+`, `-` or `@` as
a formula (`=HYPERLINK(...)`, `=cmd|' /C calc'!A0`), and a leading tab or carriage return can
hide such a start. As OWASP's "CSV Injection" page recommends, such a cell gets a leading `'`,
which the spreadsheet shows as text and does not display. A program reading the CSV sees the
`'`: `toolkit predict --raw-csv` (`escape_csv=False`) writes the cells as they are.
"""

from __future__ import annotations

from typing import Any

#: The first characters that make a spreadsheet read a cell as a formula (OWASP).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """`value` with a leading `'` when it is text starting like a formula; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value
