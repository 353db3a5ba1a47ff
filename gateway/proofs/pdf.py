"""Drawing helpers the PDFs of this package share (receipt, SKL, payment history): text the standard PDF fonts
can show, fitting and wrapping to a width, and the QR code.

The QR code is made by `segno` and drawn as vector squares: segno is a small, pure-Python, standards-conformant
encoder with no dependencies of its own, and drawing its module matrix ourselves keeps the code sharp at any
print resolution and its quiet zone under our control.
"""
from __future__ import annotations

import unicodedata

import segno
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas


def draw_qr(c: Canvas, x0: float, y0: float, size: float, url: str) -> None:
    """The QR code of ``url`` as a ``size`` square whose lower left corner is (x0, y0); the caller keeps the
    4-module quiet zone around it clear."""
    qr = segno.make_qr(url, error="m")  # M: survives a crease or smudge; boost_error raises it for free
    # segno yields each row as a tuple (typed only as Iterable[int]); tuple() of a tuple is that same tuple.
    rows = [tuple(row) for row in qr.matrix_iter(scale=1, border=0)]
    module = size / len(rows)
    path = c.beginPath()
    for r, row in enumerate(rows):
        col = 0
        while col < len(row):
            if not row[col]:
                col += 1
                continue
            start = col
            while col < len(row) and row[col]:
                col += 1
            # One rectangle per run of dark modules: fewer seams when rasterised, smaller file.
            path.rect(x0 + start * module, y0 + (len(rows) - 1 - r) * module, (col - start) * module, module)
    c.setFillGray(0)
    c.drawPath(path, stroke=0, fill=1)


def pdf_text(value: str) -> str:
    """`value` in what the standard PDF fonts can show (WinAnsi): accents outside it are dropped
    (NGUYỄN -> NGUYEN), anything else becomes `?` instead of an empty box."""
    out = []
    for ch in value:
        if _encodable(ch):
            out.append(ch)
            continue
        parts = unicodedata.normalize("NFKD", ch)
        base = "".join(b for b in parts if _encodable(b) and not unicodedata.combining(b))
        out.append(base or "?")
    return "".join(out)


def _encodable(ch: str) -> bool:
    if not ch.isprintable():
        return False
    try:
        ch.encode("cp1252")
    except UnicodeEncodeError:
        return False
    return True


def fit(text: str, font: str, size: float, width: float) -> str:
    text = pdf_text(text)
    if stringWidth(text, font, size) <= width:
        return text
    while text and stringWidth(text + "...", font, size) > width:
        text = text[:-1]
    return text + "..."


def wrap(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Word-wrap to `width`, breaking words longer than a line, at most `max_lines` (last one cut)."""
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if stringWidth(candidate, font, size) <= width:
            current = candidate
            continue
        if current:
            lines.append(current)
        pieces = wrap_chars(word, font, size, width, max_lines=max_lines + 1)
        lines.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        lines.append(current)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [fit(" ".join(lines[max_lines - 1 :]), font, size, width)]
    return lines or [""]


def wrap_chars(text: str, font: str, size: float, width: float, max_lines: int) -> list[str]:
    """Break anywhere (URLs have no spaces); the last allowed line is cut with `...`."""
    lines: list[str] = []
    current = ""
    for ch in text:
        if current and stringWidth(current + ch, font, size) > width:
            lines.append(current)
            current = ""
        current += ch
    lines.append(current)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [fit("".join(lines[max_lines - 1 :]), font, size, width)]
    return lines
