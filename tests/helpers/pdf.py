"""Reading the PDFs the gateway prints: their text (pypdf) and the QR codes on their first page (pdfium + zxing)."""
from __future__ import annotations

import io

import pypdfium2
import zxingcpp
from pypdf import PdfReader


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)


def qr_codes(pdf: bytes, scale: int = 3) -> list[str]:
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=scale).to_pil()
    finally:
        document.close()
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
