"""The receipt's QR code opened on a phone: the public proof check as a page in a real browser (Chromium with
a phone's viewport, JavaScript off as well as on), for a valid, a reversed and an unknown proof, with no
serious or critical axe-core finding (spec/http-api.md "Public routes")."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from axe_playwright_python.async_playwright import Axe

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "console"
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


async def _code(db, ntpd: str) -> str:
    return await db.fetchval(
        "SELECT pr.validation_code FROM proofs pr JOIN payments p ON p.id = pr.payment_id WHERE p.ntpd = $1", ntpd)


async def test_valid_reversed_and_unknown_proofs_render_for_a_phone(site, new_context, db, tmp_path):
    shots = SCREENSHOTS if os.environ.get("GATEWAY_CONSOLE_SCREENSHOTS") else tmp_path
    valid, reversed_ = site.ntpds
    cases = [
        (f"/v1/proofs/{valid}?code={await _code(db, valid)}", "SAH", valid),
        (f"/v1/proofs/{reversed_}?code={await _code(db, reversed_)}", "DIBATALKAN", reversed_),
        # A wrong code reads exactly like an unknown NTPD: the page never reveals that a payment exists.
        (f"/v1/proofs/{valid}?code=ABCD-EFGH", "TIDAK DITEMUKAN", valid),
        ("/v1/proofs/261130100000009999?code=ABCD-EFGH", "TIDAK DITEMUKAN", "261130100000009999"),
    ]
    for javascript in (False, True):
        page = await (await new_context(java_script_enabled=javascript, **PHONE)).new_page()
        for path, word, ntpd in cases:
            response = await page.goto(site.url(path))
            assert response is not None and response.status == 200
            assert response.headers["content-type"].startswith("text/html")
            assert (await page.locator("p.word").inner_text()).strip() == word, path
            if not javascript and path == cases[0][0]:
                await page.screenshot(path=str(shots / "11-cek-bukti.png"), full_page=True)
            body = await page.locator("body").inner_text()
            assert ntpd in body and "KOTA BEKASI" in body.upper(), path
            if word != "TIDAK DITEMUKAN":
                # Masked: the NOP shows its region and district, never the whole number.
                assert "3275010001" in body and "32750100010010001" not in body.replace(".", "").replace("-", "")
            # Fits a phone: nothing wider than the viewport.
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390, path
            if javascript:
                result = await Axe().run(page)
                serious = [(v["id"], v["impact"]) for v in result.response["violations"]
                           if v["impact"] in ("serious", "critical")]
                assert serious == [], (path, serious)
