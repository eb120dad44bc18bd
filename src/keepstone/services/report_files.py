"""A report's table as the file the vendor's ``Reports/Generate*`` answer: CSV (RFC 4180, UTF-8
with a byte order mark so spreadsheet programs read the names right) or PDF (fpdf2, pure
Python: a title, a subtitle, and the table repeated under its header on every page)."""

from __future__ import annotations

import csv
import io

from keepstone.services.protection_reports import Table

PDF_FONT = "Helvetica"  # a core font: Latin-1 only, so other characters are replaced
HEADING_FILL = (220, 228, 240)


def to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.columns)
    for row in table.rows:
        # a cell starting like a formula is quoted as text (CSV injection in spreadsheets)
        writer.writerow([_inert(cell) for cell in row])
    return ("\ufeff" + out.getvalue()).encode()


def _inert(cell: str | int) -> str | int:
    if isinstance(cell, str) and cell[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + cell
    return cell


def _latin1(text: str) -> str:
    return text.encode("latin-1", "replace").decode("latin-1")


def to_pdf(table: Table) -> bytes:
    # imported here: fpdf2 (with fontTools and Pillow) takes seconds to import, which every
    # server start would pay for a report few servers make
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    heading = FontFace(emphasis="BOLD", fill_color=HEADING_FILL)
    pdf = FPDF(orientation="landscape", format="A4")
    pdf.set_title(table.title)
    pdf.set_creator("Keepstone")
    pdf.set_auto_page_break(auto=True, margin=15)
    pdf.add_page()
    pdf.set_font(PDF_FONT, style="B", size=16)
    pdf.cell(0, 10, _latin1(table.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(PDF_FONT, size=10)
    pdf.cell(0, 8, _latin1(table.subtitle), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    pdf.set_font(PDF_FONT, size=9)
    with pdf.table(
        headings_style=heading, line_height=6, text_align="LEFT", repeat_headings=1
    ) as grid:
        grid.row([_latin1(column) for column in table.columns])
        for row in table.rows:
            grid.row([_latin1(str(cell)) for cell in row])
        if not table.rows:
            grid.row(["(none)", *([""] * (len(table.columns) - 1))])
    return bytes(pdf.output())
