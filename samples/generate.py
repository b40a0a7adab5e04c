"""Write the sample documents of this folder.

Run `python samples/generate.py` to rewrite them in place, or pass another
directory to write them there. The output is byte-for-byte the same on every
run with the same pypdf and Pillow versions: no timestamps, fixed ZIP dates
and a fixed member order.

Files written:
    01-report.pdf    3 pages of text in Helvetica
    02-letter.docx   a one-page letter
    03-figures.xlsx  one small sheet with a SUM formula
    04-chart.png     a 320x200 bar chart
"""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw
from pypdf import PdfWriter
from pypdf.generic import (
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
)

A4 = (595, 842)
ZIP_DATE = (2024, 1, 1, 0, 0, 0)

REPORT_PAGES: list[tuple[str, list[str]]] = [
    (
        "Quarterly operations report",
        [
            "This sample report is part of pdfco-tasks.",
            "It has three pages, so a merge that contains it gains",
            "exactly three pages from this file.",
            "",
            "Summary",
            "Orders shipped: 1,204",
            "Orders returned: 37",
            "On-time delivery: 96.8 %",
        ],
    ),
    (
        "Regional results",
        [
            "North: 412 orders, 9 returns",
            "South: 298 orders, 11 returns",
            "East: 305 orders, 8 returns",
            "West: 189 orders, 9 returns",
        ],
    ),
    (
        "Next steps",
        [
            "1. Move the West warehouse to the new carrier.",
            "2. Review the return reasons of the South region.",
            "3. Publish the next report in the first week of the quarter.",
        ],
    ),
]


def main(argv: Sequence[str]) -> int:
    """Write all samples into `argv[0]`, or beside this script without it."""
    directory = Path(argv[0]) if argv else Path(__file__).resolve().parent
    directory.mkdir(parents=True, exist_ok=True)

    write_report(directory / "01-report.pdf")
    write_letter(directory / "02-letter.docx")
    write_figures(directory / "03-figures.xlsx")
    write_chart(directory / "04-chart.png")
    print(f"Wrote 4 samples to {directory}")
    return 0


def write_report(path: Path) -> None:
    """Write a 3-page PDF whose pages carry a title, text and a page number."""
    writer = PdfWriter()
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    for number, (title, lines) in enumerate(REPORT_PAGES, start=1):
        page = writer.add_blank_page(width=A4[0], height=A4[1])
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        footer = f"Page {number} of {len(REPORT_PAGES)}"
        content = DecodedStreamObject()
        content.set_data(_page_content(title, lines, footer))
        page.replace_contents(content.flate_encode())
    writer.add_metadata({"/Title": "Quarterly operations report"})
    with path.open("wb") as file:
        writer.write(file)


def _page_content(title: str, lines: list[str], footer: str) -> bytes:
    operators = ["BT", "/F1 22 Tf", "72 760 Td", f"({_pdf_text(title)}) Tj", "ET"]
    operators += ["BT", "/F1 12 Tf", "16 TL", "72 720 Td"]
    operators += [f"({_pdf_text(line)}) '" for line in lines]
    operators += ["ET", "BT", "/F1 9 Tf", "72 40 Td", f"({_pdf_text(footer)}) Tj", "ET"]
    return "\n".join(operators).encode("latin-1")


def _pdf_text(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
PACKAGE = "http://schemas.openxmlformats.org/package/2006"
OFFICE_RELATIONSHIPS = (
    "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
)
WORD_MAIN = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
SHEET_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
OFFICE_TYPE = "application/vnd.openxmlformats-officedocument"
CORE_TYPE = "application/vnd.openxmlformats-package.core-properties+xml"
APP_TYPE = f"{OFFICE_TYPE}.extended-properties+xml"
EXTENDED_PROPERTIES = (
    "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"
)


def _content_types(overrides: dict[str, str]) -> str:
    parts = [
        '<Default Extension="rels" ContentType="application/'
        'vnd.openxmlformats-package.relationships+xml"/>',
        '<Default Extension="xml" ContentType="application/xml"/>',
    ]
    parts += [
        f'<Override PartName="{name}" ContentType="{content_type}"/>'
        for name, content_type in overrides.items()
    ]
    body = "\n".join(parts)
    return (
        f'{XML_DECLARATION}<Types xmlns="{PACKAGE}/content-types">\n{body}\n</Types>\n'
    )


def _relationships(targets: list[tuple[str, str]]) -> str:
    parts = [
        f'<Relationship Id="rId{number}" Type="{kind}" Target="{target}"/>'
        for number, (kind, target) in enumerate(targets, start=1)
    ]
    body = "\n".join(parts)
    return (
        f'{XML_DECLARATION}<Relationships xmlns="{PACKAGE}/relationships">\n'
        f"{body}\n</Relationships>\n"
    )


def _package_relationships(main_part: str) -> str:
    return _relationships(
        [
            (f"{OFFICE_RELATIONSHIPS}/officeDocument", main_part),
            (f"{PACKAGE}/relationships/metadata/core-properties", "docProps/core.xml"),
            (f"{OFFICE_RELATIONSHIPS}/extended-properties", "docProps/app.xml"),
        ]
    )


def _core_properties(title: str) -> str:
    return (
        f'{XML_DECLARATION}<cp:coreProperties xmlns:cp="{PACKAGE}/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        f"<dc:title>{_xml_text(title)}</dc:title>\n"
        "<dc:creator>pdfco-tasks</dc:creator>\n"
        "</cp:coreProperties>\n"
    )


DOCX_STYLES = f"""{XML_DECLARATION}<w:styles xmlns:w="{WORD_MAIN}">
<w:docDefaults>
<w:rPrDefault><w:rPr><w:sz w:val="22"/></w:rPr></w:rPrDefault>
<w:pPrDefault><w:pPr><w:spacing w:after="160"/></w:pPr></w:pPrDefault>
</w:docDefaults>
<w:style w:type="paragraph" w:default="1" w:styleId="Normal">
<w:name w:val="Normal"/>
</w:style>
<w:style w:type="paragraph" w:styleId="Title">
<w:name w:val="Title"/><w:basedOn w:val="Normal"/>
<w:rPr><w:b/><w:sz w:val="36"/></w:rPr>
</w:style>
</w:styles>
"""

# A4 in twentieths of a point, with 2.54 cm margins.
DOCX_SECTION = (
    '<w:sectPr><w:pgSz w:w="11906" w:h="16838"/>'
    '<w:pgMar w:top="1440" w:right="1440" w:bottom="1440" w:left="1440" '
    'w:header="708" w:footer="708" w:gutter="0"/></w:sectPr>'
)

LETTER_PARAGRAPHS = [
    "Dear reader,",
    "this letter is one of the sample documents of pdfco-tasks. PDF.co converts "
    "it to PDF before merging, so the merge cannot know its page count in "
    "advance; it adds at least one page.",
    "LibreOffice renders it as exactly one A4 page.",
    "With kind regards,",
    "The pdfco-tasks team",
]


def write_letter(path: Path) -> None:
    """Write a one-page DOCX letter with a title and five paragraphs."""
    paragraphs = [_docx_paragraph("Sample letter", style="Title")]
    paragraphs += [_docx_paragraph(text) for text in LETTER_PARAGRAPHS]
    body = "\n".join([*paragraphs, DOCX_SECTION])
    document = (
        f'{XML_DECLARATION}<w:document xmlns:w="{WORD_MAIN}">\n'
        f"<w:body>\n{body}\n</w:body>\n</w:document>\n"
    )
    content_types = _content_types(
        {
            "/word/document.xml": f"{OFFICE_TYPE}.wordprocessingml.document.main+xml",
            "/word/styles.xml": f"{OFFICE_TYPE}.wordprocessingml.styles+xml",
            "/docProps/core.xml": CORE_TYPE,
            "/docProps/app.xml": APP_TYPE,
        }
    )
    document_relationships = _relationships(
        [(f"{OFFICE_RELATIONSHIPS}/styles", "styles.xml")]
    )
    _write_zip(
        path,
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", _package_relationships("word/document.xml")),
            ("docProps/app.xml", _app_properties()),
            ("docProps/core.xml", _core_properties("Sample letter")),
            ("word/_rels/document.xml.rels", document_relationships),
            ("word/document.xml", document),
            ("word/styles.xml", DOCX_STYLES),
        ],
    )


def _docx_paragraph(text: str, *, style: str | None = None) -> str:
    properties = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{properties}<w:r><w:t>{_xml_text(text)}</w:t></w:r></w:p>"


XLSX_STYLES = f"""{XML_DECLARATION}<styleSheet xmlns="{SHEET_MAIN}">
<fonts count="2">
<font><sz val="11"/><name val="Calibri"/></font>
<font><b/><sz val="11"/><name val="Calibri"/></font>
</fonts>
<fills count="2">
<fill><patternFill patternType="none"/></fill>
<fill><patternFill patternType="gray125"/></fill>
</fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1">
<xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>
</cellStyleXfs>
<cellXfs count="2">
<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>
<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>
</cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>
"""

XLSX_WORKBOOK = (
    f'{XML_DECLARATION}<workbook xmlns="{SHEET_MAIN}" '
    f'xmlns:r="{OFFICE_RELATIONSHIPS}">\n'
    '<sheets><sheet name="Figures" sheetId="1" r:id="rId1"/></sheets>\n'
    "</workbook>\n"
)

FIGURES_HEADER = ["Region", "Q1", "Q2", "Q3", "Total"]
FIGURES_ROWS: list[tuple[str, int, int, int]] = [
    ("North", 132, 141, 139),
    ("South", 95, 102, 101),
    ("East", 99, 104, 102),
    ("West", 61, 66, 62),
]


def write_figures(path: Path) -> None:
    """Write a one-sheet XLSX: a header row, four regions and row totals."""
    header = [
        _inline_cell(f"{column}1", label, bold=True)
        for column, label in zip("ABCDE", FIGURES_HEADER, strict=True)
    ]
    rows = [_xlsx_row(1, header)]
    for number, (region, *values) in enumerate(FIGURES_ROWS, start=2):
        rows.append(_xlsx_row(number, _figures_cells(number, region, values)))

    body = "\n".join(rows)
    sheet = (
        f'{XML_DECLARATION}<worksheet xmlns="{SHEET_MAIN}">\n'
        f'<dimension ref="A1:E{len(FIGURES_ROWS) + 1}"/>\n'
        f"<sheetData>\n{body}\n</sheetData>\n</worksheet>\n"
    )
    content_types = _content_types(
        {
            "/xl/workbook.xml": f"{OFFICE_TYPE}.spreadsheetml.sheet.main+xml",
            "/xl/worksheets/sheet1.xml": f"{OFFICE_TYPE}.spreadsheetml.worksheet+xml",
            "/xl/styles.xml": f"{OFFICE_TYPE}.spreadsheetml.styles+xml",
            "/docProps/core.xml": CORE_TYPE,
            "/docProps/app.xml": APP_TYPE,
        }
    )
    workbook_relationships = _relationships(
        [
            (f"{OFFICE_RELATIONSHIPS}/worksheet", "worksheets/sheet1.xml"),
            (f"{OFFICE_RELATIONSHIPS}/styles", "styles.xml"),
        ]
    )
    _write_zip(
        path,
        [
            ("[Content_Types].xml", content_types),
            ("_rels/.rels", _package_relationships("xl/workbook.xml")),
            ("docProps/app.xml", _app_properties()),
            ("docProps/core.xml", _core_properties("Sample figures")),
            ("xl/_rels/workbook.xml.rels", workbook_relationships),
            ("xl/styles.xml", XLSX_STYLES),
            ("xl/workbook.xml", XLSX_WORKBOOK),
            ("xl/worksheets/sheet1.xml", sheet),
        ],
    )


def _figures_cells(number: int, region: str, values: list[int]) -> list[str]:
    cells = [_inline_cell(f"A{number}", region)]
    cells += [
        f'<c r="{column}{number}"><v>{value}</v></c>'
        for column, value in zip("BCD", values, strict=True)
    ]
    cells.append(
        f'<c r="E{number}"><f>SUM(B{number}:D{number})</f><v>{sum(values)}</v></c>'
    )
    return cells


def _xlsx_row(number: int, cells: list[str]) -> str:
    return f'<row r="{number}">{"".join(cells)}</row>'


def _inline_cell(reference: str, text: str, *, bold: bool = False) -> str:
    style = ' s="1"' if bold else ""
    return (
        f'<c r="{reference}"{style} t="inlineStr"><is><t>{_xml_text(text)}</t></is></c>'
    )


def _app_properties() -> str:
    return (
        f'{XML_DECLARATION}<Properties xmlns="{EXTENDED_PROPERTIES}">\n'
        "<Application>pdfco-tasks samples</Application>\n</Properties>\n"
    )


def write_chart(path: Path) -> None:
    """Write a 320x200 PNG bar chart of the quarterly totals per region."""
    image = Image.new("RGB", (320, 200), "white")
    draw = ImageDraw.Draw(image)
    draw.line([(30, 10), (30, 180), (310, 180)], fill="black", width=2)
    colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728"]
    largest = max(sum(values) for _, *values in FIGURES_ROWS)
    for index, (_, *values) in enumerate(FIGURES_ROWS):
        height = round(160 * sum(values) / largest)
        left = 50 + index * 65
        draw.rectangle([(left, 180 - height), (left + 40, 179)], fill=colors[index])
    image.save(path, format="PNG", optimize=False)


def _write_zip(path: Path, members: list[tuple[str, str]]) -> None:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in members:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, text.encode("utf-8"))


def _xml_text(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
