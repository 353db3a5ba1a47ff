"""The teller receipt PDF (http-api.md `GET /v1/payments/{ntpd}/receipt.pdf`)."""
import datetime
import io

import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader

from gateway.domain.proof import proof_document
from gateway.proofs.keys import KeyStore
from gateway.proofs.receipt import receipt_pdf, rupiah, tanggal
from gateway.proofs.signing import sign

JAKARTA = datetime.timezone(datetime.timedelta(hours=7))
PUBLIC_URL = "https://pajak.bekasikota.go.id"
MM = 72 / 25.4


@pytest.fixture(scope="module")
def key(tmp_path_factory):
    store = KeyStore(tmp_path_factory.mktemp("keys"), now=lambda: datetime.datetime(2026, 1, 1, tzinfo=JAKARTA))
    store.init()
    return store.current()


def signed_proof(key, **over):
    kid, private = key
    args = dict(
        ntpd="261123100000001210", tax="PBB", bill="327501000100100010", tax_year=2026,
        taxpayer="SITI AMINAH", principal=150000, penalty=4500, total=154500,
        business_date=datetime.date(2026, 11, 23),
        paid_at=datetime.datetime(2026, 11, 23, 9, 15, 2, tzinfo=JAKARTA), bank="110", channel="teller",
        ntb="ABC123", region="3275", kid=kid,
    )
    args.update(over)
    return sign(proof_document(**args), private, kid)


def verify_url(signed) -> str:
    return f"{PUBLIC_URL}/v1/proofs/{signed.document['ntpd']}?code={signed.validation_code}"


def render(signed, **over) -> bytes:
    args = dict(proof=signed.document, validation_code=signed.validation_code, verify_url=verify_url(signed),
                region_name="KOTA BEKASI", bank_name="BANK PEMBANGUNAN DAERAH")
    args.update(over)
    return receipt_pdf(**args)


def page_text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return reader.pages[0].extract_text()


def qr_texts(pdf: bytes) -> list[str]:
    page = pypdfium2.PdfDocument(pdf)[0]
    image = page.render(scale=4).to_pil()  # 288 dpi
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


def formatted(code: str) -> str:
    return "-".join(code[i:i + 4] for i in range(0, 16, 4))


def test_one_a6_page(key):
    reader = PdfReader(io.BytesIO(render(signed_proof(key))))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert abs(float(box.width) - 105 * MM) < 1
    assert abs(float(box.height) - 148 * MM) < 1


def test_pbb_receipt_text(key):
    signed = signed_proof(key)
    text = page_text(render(signed))
    for expected in [
        "PEMERINTAH KOTA BEKASI",
        "BADAN PENDAPATAN DAERAH",
        "BUKTI PEMBAYARAN PBB-P2",
        "32.75.010.001.001-0001.0",
        "2026",
        "SITI AMINAH",
        "Rp150.000",
        "Rp4.500",
        "Rp154.500",
        "23 November 2026",
        "110 BANK PEMBANGUNAN DAERAH",
        "ABC123",
        "261123100000001210",
        formatted(signed.validation_code),
        "tanda bukti pembayaran yang sah",
    ]:
        assert expected in text, expected


def test_qr_code_is_the_verification_url(key):
    signed = signed_proof(key)
    assert qr_texts(render(signed)) == [verify_url(signed)]


def test_qr_code_of_a_long_url(key):
    signed = signed_proof(key)
    url = "https://pembayaran-pajak-daerah.example.go.id/gateway/public/v1/proofs/261123100000001210?code=" + formatted(
        signed.validation_code
    )
    assert qr_texts(render(signed, verify_url=url)) == [url]


def test_bphtb_receipt(key):
    signed = signed_proof(
        key, ntpd="261123200000000720", tax="BPHTB", bill="20261100012356", nop="327501000100100010",
        principal=5_000_000, penalty=250_000, total=5_250_000, taxpayer="PT MAJU JAYA SENTOSA ABADI",
    )
    pdf = render(signed)
    text = page_text(pdf)
    for expected in ["BUKTI PEMBAYARAN BPHTB", "20261100012356", "32.75.010.001.001-0001.0", "Rp5.250.000",
                     "261123200000000720", formatted(signed.validation_code)]:
        assert expected in text, expected
    assert qr_texts(pdf) == [verify_url(signed)]


def test_deterministic(key):
    signed = signed_proof(key)
    assert render(signed) == render(signed)


def test_dashed_code_accepted(key):
    signed = signed_proof(key)
    assert render(signed, validation_code=formatted(signed.validation_code)) == render(signed)


def test_reversed_receipt_says_it_is_not_valid(key):
    text = page_text(render(signed_proof(key), status="reversed"))
    assert "DIBATALKAN" in text
    assert "bukan tanda bukti pembayaran yang sah" in text
    assert "adalah tanda bukti pembayaran yang sah" not in text


def test_long_and_non_latin_names_do_not_break_the_page(key):
    signed = signed_proof(key, taxpayer="NGUYỄN " + "SANGAT PANJANG SEKALI " * 8 + "王")
    pdf = render(signed, bank_name="BANK " + "X" * 200)
    reader = PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    text = reader.pages[0].extract_text()
    assert "NGUYEN SANGAT" in text  # the accent outside the PDF font is dropped, not a black box
    assert "261123100000001210" in text
    assert qr_texts(pdf) == [verify_url(signed)]


@pytest.mark.parametrize(
    "over",
    [
        {"status": "valid"},
        {"validation_code": "7K2Q-9MZD-03XH-PA4"},
        {"verify_url": ""},
        {"region_name": " "},
        {"proof": {"tax": "PBB"}},
    ],
)
def test_bad_arguments(key, over):
    with pytest.raises(ValueError):
        render(signed_proof(key), **over)


@pytest.mark.parametrize(
    ("amount", "text"),
    [(0, "Rp0"), (999, "Rp999"), (1000, "Rp1.000"), (154500, "Rp154.500"), (1_234_567_890, "Rp1.234.567.890")],
)
def test_rupiah(amount, text):
    assert rupiah(amount) == text


def test_rupiah_refuses_non_integers():
    with pytest.raises(ValueError):
        rupiah(1.5)
    with pytest.raises(ValueError):
        rupiah(True)


def test_tanggal():
    assert tanggal(datetime.date(2026, 1, 5)) == "5 Januari 2026"
    assert tanggal(datetime.date(2026, 12, 31)) == "31 Desember 2026"


def test_reversed_receipt_qr_still_scans(key):
    signed = signed_proof(key)
    assert qr_texts(render(signed, status="reversed")) == [verify_url(signed)]


def test_a_relief_receipt_prints_gross_reductions_program_and_decree(key):
    signed = signed_proof(key, principal=135000, penalty=0, total=135000, discount=15000, penalty_waived=4500,
                          relief="DISC-11")
    pdf = render(signed, relief=("Diskon November", "Kep. Wali Kota Bekasi No. 9/2026"))
    text = " ".join(page_text(pdf).split())
    for expected in ("Pokok Pajak Rp150.000", "Pengurangan Pokok - Rp15.000", "Denda Rp4.500",
                     "Penghapusan Denda - Rp4.500", "Program DISC-11: Diskon November",
                     "Dasar Kep. Wali Kota Bekasi No. 9/2026", "Jumlah Dibayar Rp135.000"):
        assert expected in text, (expected, text)
    # Without the program's name and decree (not kept), the id stands for it.
    assert "Program DISC-11" in " ".join(page_text(render(signed)).split())


def test_the_longest_relief_receipt_keeps_its_qr_code_clear_of_the_footer(key):
    signed = signed_proof(key, tax="BPHTB", bill="20261100012356", nop="327501000100100010",
                          ntpd="261123200000000720", taxpayer="SITI AMINAH BINTI ABDULLAH SUKARDI " * 3,
                          principal=135000, penalty=0, total=135000, discount=15000, penalty_waived=4500,
                          relief="DISC-11")
    pdf = render(signed, bank_name="BANK PEMBANGUNAN DAERAH JAWA BARAT DAN BANTEN " * 2, copy=True,
                 relief=("Diskon " * 30, "Keputusan Wali Kota " * 30))
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    image = pypdfium2.PdfDocument(pdf)[0].render(scale=4).to_pil()
    (found,) = [r for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]
    assert found.text == verify_url(signed)
    footer_line_px = image.height - (16 + 20) * 4  # _FOOTER_TOP points above the page's bottom, at 4 px/pt
    corners = (found.position.top_left, found.position.top_right, found.position.bottom_left,
               found.position.bottom_right)
    assert max(p.y for p in corners) < footer_line_px
