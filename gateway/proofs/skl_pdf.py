"""The Surat Keterangan Lunas as a one-page A4 PDF (spec/domain.md "Payment proof", operations.md "Support
console"): the certificate that a bill's tax year is paid, for a taxpayer whose receipt is lost or damaged.

As the receipt, it is drawn from the signed document alone (what it says is what the signature covers), with
the validation code and a QR code of the public check (`/v1/proofs/SKL-<NTPD>-<nn>?code=...`); the caller adds
only the names the document does not hold. Deterministic output (reportlab `invariant`): a reprint of one
certificate is the same file.
"""
from __future__ import annotations

import datetime
import io
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A4
from reportlab.pdfgen.canvas import Canvas

from gateway.domain.nop import display_nop
from gateway.domain.proof import SKL_TYPE, format_code, parse_skl_number

from .pdf import draw_qr, fit, pdf_text, wrap, wrap_chars
from .text import AGENCY_NAME, TAX_TITLES, government, rupiah, tanggal, waktu

STATUSES = ("valid", "reversed")
MAX_VERIFY_URL_LENGTH = 1000

_TAX_NAMES = {
    "PBB": "PAJAK BUMI DAN BANGUNAN PERDESAAN DAN PERKOTAAN (PBB-P2)",
    "BPHTB": "BEA PEROLEHAN HAK ATAS TANAH DAN BANGUNAN (BPHTB)",
}
_PAGE_W, _PAGE_H = A4
_MARGIN = 56.0
_LABEL_W = 150.0
_ROW_H = 17.0
_FONT, _BOLD, _MONO = "Helvetica", "Helvetica-Bold", "Courier-Bold"
_QR_SIZE = 130.0  # about 46 mm
_BODY_W = _PAGE_W - 2 * _MARGIN


def skl_pdf(
    *,
    document: Mapping[str, Any],
    validation_code: str,
    verify_url: str,
    region_name: str,
    bank_name: str = "",
    agency_name: str = AGENCY_NAME,
    status: str = "valid",
) -> bytes:
    """The certificate ``document`` (a signed SKL document) as PDF bytes; ``status`` ``reversed`` prints it
    marked as no longer valid (its payment was reversed since it was issued)."""
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if not isinstance(verify_url, str) or not verify_url or len(verify_url) > MAX_VERIFY_URL_LENGTH:
        raise ValueError(f"verify_url must be text of 1..{MAX_VERIFY_URL_LENGTH} characters")
    f = _fields(document)
    code = format_code(validation_code)
    region = " ".join(region_name.split()).title()

    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A4, invariant=1, pageCompression=1)
    c.setTitle(f"Surat Keterangan Lunas {f['number']}")
    c.setAuthor(pdf_text(government(region_name)))
    c.setSubject(f"Surat keterangan lunas {TAX_TITLES[f['tax']]} tahun pajak {f['tax_year']}")
    c.setCreator("gateway")

    y = _PAGE_H - _MARGIN
    for line, size in ((government(region_name), 13), (agency_name.strip().upper(), 13)):
        c.setFont(_BOLD, size)
        c.drawCentredString(_PAGE_W / 2, y, fit(line, _BOLD, size, _BODY_W))
        y -= 17
    c.setLineWidth(1.5)
    c.line(_MARGIN, y, _PAGE_W - _MARGIN, y)
    y -= 36
    c.setFont(_BOLD, 17)
    c.drawCentredString(_PAGE_W / 2, y, "SURAT KETERANGAN LUNAS")
    y -= 17
    c.setFont(_BOLD, 9.5)
    c.drawCentredString(_PAGE_W / 2, y, _TAX_NAMES[f["tax"]])
    y -= 16
    c.setFont(_FONT, 11)
    c.drawCentredString(_PAGE_W / 2, y, f"Nomor: {f['number']}")
    y -= 32

    y = _paragraph(c, y, f"{agency_name.strip().title()} {region} menerangkan bahwa {TAX_TITLES[f['tax']]} atas objek"
                         f" pajak berikut untuk tahun pajak {f['tax_year']} telah dibayar lunas:")
    y -= 8
    for label, value, bold in _rows(f, bank_name):
        c.setFont(_FONT, 10)
        c.drawString(_MARGIN + 12, y, label)
        font = _BOLD if bold else _FONT
        c.setFont(font, 10.5)
        for line in wrap(pdf_text(value), font, 10.5, _BODY_W - 12 - _LABEL_W, max_lines=2):
            c.drawString(_MARGIN + 12 + _LABEL_W, y, line)
            y -= _ROW_H
    y -= 8
    y = _paragraph(c, y, "Surat keterangan ini diterbitkan sebagai pengganti tanda bukti pembayaran yang hilang atau"
                         " rusak (Peraturan Wali Kota Nomor 47 Tahun 2016) dan berlaku selama pembayaran tersebut tidak"
                         " dibatalkan.")
    y -= 8
    c.setFont(_FONT, 10)
    c.drawString(_MARGIN, y, f"Diterbitkan {waktu(f['issued_at'])} oleh petugas {pdf_text(f['issued_by'])}.")
    y -= 30

    c.setFont(_FONT, 10)
    c.drawString(_MARGIN, y, "KODE VALIDASI")
    c.setFont(_MONO, 16)
    c.drawString(_MARGIN + _LABEL_W, y - 1, code)
    y -= 24

    draw_qr(c, _MARGIN, y - _QR_SIZE, _QR_SIZE, verify_url)
    x = _MARGIN + _QR_SIZE + 20  # the quiet zone on its right
    width = _PAGE_W - _MARGIN - x
    ty = y - 10
    c.setFont(_FONT, 10)
    for line in wrap("Periksa keaslian surat ini: pindai kode QR atau buka alamat berikut, lalu pastikan hasilnya SAH.",
                     _FONT, 10, width, 4):
        c.drawString(x, ty, line)
        ty -= 13
    ty -= 4
    c.setFont(_FONT, 8.5)
    for line in wrap_chars(verify_url, _FONT, 8.5, width, max_lines=6):
        c.drawString(x, ty, line)
        ty -= 11

    c.setLineWidth(0.5)
    c.line(_MARGIN, _MARGIN + 24, _PAGE_W - _MARGIN, _MARGIN + 24)
    c.setFont(_FONT, 8.5)
    c.drawCentredString(_PAGE_W / 2, _MARGIN + 12, f"Ditandatangani secara elektronik (Ed25519, kunci {f['kid']});"
                                                   " sah tanpa tanda tangan basah dan cap.")
    if status == "reversed":
        c.setFont(_BOLD, 9)
        c.drawCentredString(_PAGE_W / 2, _MARGIN, "PEMBAYARAN INI TELAH DIBATALKAN: SURAT INI TIDAK BERLAKU.")
        c.saveState()
        c.setFillColorRGB(0.8, 0, 0, alpha=0.35)
        c.translate(_PAGE_W / 2, _PAGE_H * 0.6)
        c.rotate(35)
        c.setFont(_BOLD, 64)
        c.drawCentredString(0, 0, "DIBATALKAN")
        c.restoreState()
    c.showPage()
    c.save()
    return buf.getvalue()


def _fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(doc, Mapping) or doc.get("type") != SKL_TYPE:
        raise ValueError("document must be a Surat Keterangan Lunas document (type skl)")

    def get(name: str, kind: type) -> Any:
        value = doc.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"document.{name} is missing or not {kind.__name__}")
        return value

    f: dict[str, Any] = {name: get(name, str) for name in ("number", "ntpd", "tax", "bill", "taxpayer", "bank",
                                                            "issued_by", "kid")}
    if f["tax"] not in _TAX_NAMES:
        raise ValueError(f"document.tax must be PBB or BPHTB, got {f['tax']!r}")
    ntpd, _ = parse_skl_number(f["number"])
    if ntpd != f["ntpd"]:
        raise ValueError("the SKL number does not name the document's NTPD")
    f.update({name: get(name, int) for name in ("tax_year", "principal", "penalty", "total")})
    f["nop"] = get("nop", str) if f["tax"] == "BPHTB" else f["bill"]
    try:
        f["business_date"] = datetime.date.fromisoformat(get("business_date", str))
        f["issued_at"] = datetime.datetime.fromisoformat(get("issued_at", str))
    except ValueError as exc:
        raise ValueError(f"document dates are malformed: {exc}") from None
    if f["issued_at"].utcoffset() is None:
        raise ValueError("document.issued_at has no UTC offset")
    return f


def _rows(f: Mapping[str, Any], bank_name: str) -> list[tuple[str, str, bool]]:
    try:
        nop = display_nop(f["nop"])
    except ValueError:
        nop = f["nop"]
    rows = [("NOP", nop, True), ("Tahun Pajak", str(f["tax_year"]), True)]
    if f["tax"] == "BPHTB":
        rows.insert(0, ("No. Registrasi SSPD", f["bill"], True))
    return [
        *rows,
        ("Nama Wajib Pajak", f["taxpayer"], False),
        ("Pokok Pajak", rupiah(f["principal"]), False),
        ("Denda", rupiah(f["penalty"]), False),
        ("Jumlah Dibayar", rupiah(f["total"]), True),
        ("Tanggal Buku", tanggal(f["business_date"]), False),
        ("Bank", f"{f['bank']} {bank_name.strip()}".strip(), False),
        ("NTPD", f["ntpd"], True),
    ]


def _paragraph(c: Canvas, y: float, text: str) -> float:
    c.setFont(_FONT, 10.5)
    for line in wrap(pdf_text(text), _FONT, 10.5, _BODY_W, max_lines=6):
        c.drawString(_MARGIN, y, line)
        y -= 14
    return y
