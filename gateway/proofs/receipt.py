"""The teller receipt: a one-page A6 PDF of a signed proof (http-api.md `GET /v1/payments/{ntpd}/receipt.pdf`).

Everything about the payment is read from the signed proof document itself, so the receipt can
never disagree with what the signature covers; the caller adds only what the proof does not hold
(region and bank names, the verification URL). Output is byte-for-byte deterministic for the same
input (reportlab `invariant`), so a reprint is the same file.

`copy=True` is the reprint support staff make (SALINAN); the QR code and the drawing helpers are in
`pdf.py`, shared with the SKL and the payment history.
"""
from __future__ import annotations

import datetime
import io
from collections.abc import Mapping
from typing import Any

from reportlab.lib.pagesizes import A6
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

from gateway.domain.nop import display_nop
from gateway.domain.proof import format_code

from .pdf import draw_qr
from .pdf import fit as _fit
from .pdf import pdf_text as _text
from .pdf import wrap as _wrap
from .pdf import wrap_chars as _wrap_chars
from .text import AGENCY_NAME, TAX_TITLES, government, rupiah, tanggal, waktu

__all__ = ["receipt_pdf", "rupiah", "tanggal"]

STATUSES = ("paid", "reversed")
MAX_VERIFY_URL_LENGTH = 1000  # a QR code stays scannable from paper well below this

_CHANNEL_NAMES = {
    "teller": "Teller", "atm": "ATM", "edc": "EDC", "phone": "Phone banking",
    "internet": "Internet banking", "kiosk": "Kios", "autodebit": "Autodebet", "mobile": "Mobile banking",
}
_TAX_TITLES = TAX_TITLES

_PAGE_W, _PAGE_H = A6
_MARGIN = 16.0
_LABEL_W = 76.0
_ROW_H = 10.0
_FONT, _BOLD, _MONO = "Helvetica", "Helvetica-Bold", "Courier-Bold"
_QR_MIN, _QR_MAX = 72.0, 108.0  # about 25..38 mm: large enough for any phone, small enough to fit
_QR_GAP = 12.0  # the 4-module quiet zone on its right side (a module is at most about 3 pt)
_FOOTER_TOP = _MARGIN + 20


def receipt_pdf(
    *,
    proof: Mapping[str, Any],
    validation_code: str,
    verify_url: str,
    region_name: str,
    bank_name: str = "",
    agency_name: str = AGENCY_NAME,
    status: str = "paid",
    copy: bool = False,
    relief: tuple[str, str] | None = None,
) -> bytes:
    """The receipt of the payment `proof` (the signed document) as PDF bytes.

    `validation_code` may be plain or dashed; `verify_url` is the public check the QR code opens
    (`{public_url}/v1/proofs/{ntpd}?code=...`); `region_name` is the configured `[region] name`
    (`KOTA BEKASI`); `status` `reversed` prints the receipt marked as cancelled and not valid; `copy`
    prints it as a reprint (SALINAN, spec/operations.md "Support console"): a boxed SALINAN under the title,
    a SALINAN stamp across the page (clear of the QR code) and a footer that says so. A proof with a relief
    program's reduction prints the gross amounts, the reductions and the program's ``relief`` = (name,
    decree), which the payment keeps beside its proof (the proof itself names the program by its id).
    """
    if status not in STATUSES:
        raise ValueError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    if not isinstance(verify_url, str) or not verify_url or len(verify_url) > MAX_VERIFY_URL_LENGTH:
        raise ValueError(f"verify_url must be text of 1..{MAX_VERIFY_URL_LENGTH} characters")
    fields = _receipt_fields(proof)
    code = format_code(validation_code)

    buf = io.BytesIO()
    c = Canvas(buf, pagesize=A6, invariant=1, pageCompression=1)
    c.setTitle(f"{'Salinan ' if copy else ''}Bukti Pembayaran {_TAX_TITLES[fields['tax']]} {fields['ntpd']}")
    c.setAuthor(_text(_government(region_name)))
    c.setSubject("Tanda bukti pembayaran pajak daerah")
    c.setCreator("gateway")

    y = _PAGE_H - _MARGIN - 8
    for line in (_government(region_name), agency_name.strip().upper()):
        c.setFont(_BOLD, 9)
        c.drawCentredString(_PAGE_W / 2, y, _fit(line, _BOLD, 9, _PAGE_W - 2 * _MARGIN))
        y -= 11
    y -= 2
    c.setLineWidth(0.8)
    c.line(_MARGIN, y, _PAGE_W - _MARGIN, y)
    y -= 16
    c.setFont(_BOLD, 11)
    c.drawCentredString(_PAGE_W / 2, y, f"BUKTI PEMBAYARAN {_TAX_TITLES[fields['tax']]}")
    y -= 14
    if copy:
        y = _draw_copy_label(c, y)

    for row in _rows(fields, bank_name, relief):
        if row is None:
            y -= 3
            c.setLineWidth(0.3)
            c.line(_MARGIN, y + 6, _PAGE_W - _MARGIN, y + 6)
            y -= 2
            continue
        label, value, bold = row
        y = _draw_row(c, y, label, value, bold)

    y -= 4
    c.setFont(_FONT, 7.5)
    c.drawString(_MARGIN, y, "KODE VALIDASI")
    c.setFont(_MONO, 13)
    c.drawString(_MARGIN + _LABEL_W, y - 1, code)
    y -= 12

    _draw_qr_block(c, y, verify_url)

    c.setLineWidth(0.3)
    c.line(_MARGIN, _FOOTER_TOP, _PAGE_W - _MARGIN, _FOOTER_TOP)
    if status == "paid":
        footer = (
            "Struk ini adalah tanda bukti pembayaran yang sah.",
            "Simpan struk ini sebagai bukti pembayaran pajak.",
        )
    else:
        footer = ("PEMBAYARAN INI TELAH DIBATALKAN.", "Struk ini bukan tanda bukti pembayaran yang sah.")
        _draw_cancelled_stamp(c)
    if copy:
        footer = (footer[0], "SALINAN: dicetak ulang dari bukti pembayaran yang tersimpan.")
        if status == "paid":  # a reversed receipt carries its DIBATALKAN stamp there; the label says SALINAN
            _draw_stamp(c, "SALINAN", (0.1, 0.2, 0.6))
    c.setFont(_BOLD if status == "reversed" else _FONT, 7)
    c.drawCentredString(_PAGE_W / 2, _MARGIN + 11, footer[0])
    c.setFont(_FONT, 6.5)
    c.drawCentredString(_PAGE_W / 2, _MARGIN + 3, footer[1])

    c.showPage()
    c.save()
    return buf.getvalue()


# -- the proof's fields ---------------------------------------------------------------------------

def _receipt_fields(proof: Mapping[str, Any]) -> dict[str, Any]:
    """The proof's values, checked and parsed; ValueError names what is missing or malformed."""
    if not isinstance(proof, Mapping):
        raise ValueError("proof must be the proof document (a mapping)")

    def get(name: str, kind: type) -> Any:
        value = proof.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ValueError(f"proof.{name} is missing or not {kind.__name__}")
        return value

    tax = get("tax", str)
    if tax not in _TAX_TITLES:
        raise ValueError(f"proof.tax must be PBB or BPHTB, got {tax!r}")
    fields: dict[str, Any] = {
        "tax": tax,
        "ntpd": get("ntpd", str),
        "bill": get("bill", str),
        "tax_year": get("tax_year", int),
        "taxpayer": get("taxpayer", str),
        "principal": get("principal", int),
        "penalty": get("penalty", int),
        "total": get("total", int),
        "bank": get("bank", str),
        "channel": get("channel", str),
        "ntb": get("ntb", str),
    }
    fields["nop"] = get("nop", str) if tax == "BPHTB" else fields["bill"]
    fields["relief"] = proof.get("relief") if isinstance(proof.get("relief"), str) else None
    for name in ("discount", "penalty_waived"):
        fields[name] = get(name, int) if fields["relief"] is not None else 0
    try:
        fields["business_date"] = datetime.date.fromisoformat(get("business_date", str))
        fields["paid_at"] = datetime.datetime.fromisoformat(get("paid_at", str))
    except ValueError as exc:
        raise ValueError(f"proof dates are malformed: {exc}") from None
    if fields["paid_at"].utcoffset() is None:
        raise ValueError("proof.paid_at has no UTC offset")
    return fields


def _amount_rows(f: Mapping[str, Any], relief: tuple[str, str] | None) -> list[tuple[str, str, bool]]:
    """Principal and penalty as paid; under a relief program, gross first, each reduction, then the program."""
    if f["relief"] is None:
        return [("Pokok Pajak", rupiah(f["principal"]), False), ("Denda", rupiah(f["penalty"]), False)]
    name, decree = relief if relief is not None else (f["relief"], "")
    rows = [("Pokok Pajak", rupiah(f["principal"] + f["discount"]), False)]
    if f["discount"]:
        rows.append(("Pengurangan Pokok", "- " + rupiah(f["discount"]), False))
    rows.append(("Denda", rupiah(f["penalty"] + f["penalty_waived"]), False))
    if f["penalty_waived"]:
        rows.append(("Penghapusan Denda", "- " + rupiah(f["penalty_waived"]), False))
    rows.append(("Program", f"{f['relief']}: {name}" if name != f["relief"] else name, False))
    if decree:
        rows.append(("Dasar", decree, False))
    return rows


def _rows(f: Mapping[str, Any], bank_name: str,
          relief: tuple[str, str] | None = None) -> list[tuple[str, str, bool] | None]:
    try:
        nop = display_nop(f["nop"])
    except ValueError:
        nop = f["nop"]  # an older or foreign proof: print it as it is rather than refuse the reprint
    bill_rows = [("NOP", nop, True), ("Tahun Pajak", str(f["tax_year"]), False)]
    if f["tax"] == "BPHTB":
        bill_rows.insert(0, ("No. Registrasi", f["bill"], True))
    bank = f"{f['bank']} {bank_name.strip()}".strip()
    return [
        *bill_rows,
        ("Nama Wajib Pajak", f["taxpayer"], False),
        None,
        *_amount_rows(f, relief),
        ("Jumlah Dibayar", rupiah(f["total"]), True),
        None,
        ("Tanggal Buku", tanggal(f["business_date"]), False),
        ("Waktu Bayar", _waktu(f["paid_at"]), False),
        ("Bank", bank, False),
        ("Saluran", _CHANNEL_NAMES.get(f["channel"], f["channel"]), False),
        ("NTB", f["ntb"], False),
        ("NTPD", f["ntpd"], True),
    ]


def _government(region_name: str) -> str:
    return government(region_name)


def _waktu(moment: datetime.datetime) -> str:
    return waktu(moment)


# -- drawing --------------------------------------------------------------------------------------

# A relief program's two rows take one line each, in a smaller type (the id first, anything longer cut with
# an ellipsis), so that the longest receipt still leaves the QR code its minimum size above the footer.
_ONE_LINE = {"Program", "Dasar"}


def _draw_row(c: Canvas, y: float, label: str, value: str, bold: bool) -> float:
    c.setFont(_FONT, 7.5)
    c.drawString(_MARGIN, y, label)
    one_line = label in _ONE_LINE
    font, size = (_BOLD if bold else _FONT), (7.0 if one_line else 8.5)
    c.setFont(font, size)
    lines = _wrap(_text(value), font, size, _PAGE_W - 2 * _MARGIN - _LABEL_W, max_lines=1 if one_line else 2)
    for line in lines:
        c.drawString(_MARGIN + _LABEL_W, y, line)
        y -= _ROW_H
    return y


def _draw_qr_block(c: Canvas, top: float, url: str) -> None:
    # As large as the room above the footer allows (keeping a quiet zone below it too).
    size = max(_QR_MIN, min(_QR_MAX, top - _FOOTER_TOP - _QR_GAP))
    draw_qr(c, _MARGIN, top - size, size, url)

    x = _MARGIN + size + _QR_GAP
    width = _PAGE_W - _MARGIN - x
    y = top - 7
    c.setFont(_FONT, 7)
    for line in _wrap("Periksa keaslian bukti ini: pindai kode QR atau buka alamat berikut.", _FONT, 7, width, 4):
        c.drawString(x, y, line)
        y -= 8.5
    y -= 2
    c.setFont(_FONT, 6)
    for line in _wrap_chars(url, _FONT, 6, width, max_lines=7):
        c.drawString(x, y, line)
        y -= 7


def _draw_cancelled_stamp(c: Canvas) -> None:
    _draw_stamp(c, "DIBATALKAN", (0.8, 0, 0))


def _draw_stamp(c: Canvas, word: str, rgb: tuple[float, float, float]) -> None:
    c.saveState()
    c.setFillColorRGB(*rgb, alpha=0.35)
    # Across the amounts, clear of the QR code: a reversed receipt's code should still scan (the
    # public check then says `reversed`), and a copy's too.
    c.translate(_PAGE_W / 2, _PAGE_H * 0.62)
    c.rotate(35)
    c.setFont(_BOLD, 34)
    c.drawCentredString(0, 0, word)
    c.restoreState()


def _draw_copy_label(c: Canvas, y: float) -> float:
    """A boxed SALINAN under the title, in print black: it survives a photocopy that the stamp may not."""
    c.setFont(_BOLD, 10)
    width = stringWidth("SALINAN", _BOLD, 10) + 12
    c.setLineWidth(1)
    c.rect(_PAGE_W / 2 - width / 2, y - 3.5, width, 14, stroke=1, fill=0)
    c.drawCentredString(_PAGE_W / 2, y, "SALINAN")
    return y - 16
