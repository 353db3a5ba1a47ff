"""The audit log in the console: admin only, filtered by user, action and date, paged; every console read
and action leaves its row (spec/operations.md "Records kept")."""
from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

pytestmark = pytest.mark.integration


async def test_admin_reads_the_audit_log_support_may_not(site, signed_in):
    support = await signed_in("budi")
    assert await support.locator("nav >> text=Audit").count() == 0
    await support.goto(site.url(f"/console/transaksi?ntpd={site.ntpds[0]}"))
    await support.locator("#hasil tbody tr td a").first.click()
    story_url = support.url
    # A resolution without a note is refused by the server too (the form's `required` aside).
    token = await support.locator("form.signout input[name=csrf_token]").get_attribute("value")
    refused = await support.request.post(site.url("/console/antrian/item/1"), max_redirects=0,
                                         form={"csrf_token": token, "resolution": "accepted", "catatan": "  "})
    assert refused.status == 400 and "Penyelesaian memerlukan catatan." in await refused.text()
    response = await support.goto(site.url("/console/audit"))
    assert response.status == 403 and await support.inner_text("h1") == "Akses ditolak"

    admin = await signed_in("ani")
    await admin.click("nav >> text=Audit")
    await admin.fill("#pengguna", "budi")
    await admin.fill("#aksi", "transactions")
    today = dt.datetime.now(ZoneInfo("Asia/Jakarta")).date().isoformat()
    await admin.fill("#tanggal", today)
    await admin.click("button:text('Saring')")
    rows = admin.locator("#audit tbody tr")
    seen = [[c.strip() for c in (await rows.nth(i).locator("td").all_text_contents())] for i in range(await rows.count())]
    payment_id = story_url.rsplit("/", 1)[1]
    assert [(r[2], r[3], r[4]) for r in seen] == [("budi", "transactions.story", payment_id),
                                                  ("budi", "transactions.search", "")]
    assert seen[0][5] == "via=session" and seen[0][6] == "127.0.0.1"
    assert seen[1][5] == f"via=session, ntpd={site.ntpds[0]}"
    # Without the action filter, newest first: the refused audit page, the reads (the home page's is the
    # dashboard) and the sign-in. The refused empty note was no action: nothing recorded.
    await admin.goto(site.url(f"/console/audit?pengguna=budi&tanggal={today}"))
    actions = [a.strip() for a in await admin.locator("#audit tbody tr td:nth-child(4)").all_text_contents()]
    assert actions == ["denied", "transactions.story", "transactions.search", "dashboard.view", "session.login"]
    denied = [c.strip() for c in await admin.locator("#audit tbody tr").first.locator("td").all_text_contents()]
    assert denied[4] == "GET /console/audit"
    assert sorted(denied[5].split(", ")) == ["channel=console", "reason=role", "role=support"]  # jsonb's order
    # The admin's own reading of the log is audited, this very reading included (same transaction).
    await admin.goto(site.url("/console/audit?pengguna=ani&aksi=audit.view"))
    assert await admin.locator("#audit tbody tr").count() == 4
    newest = [c.strip() for c in await admin.locator("#audit tbody tr").first.locator("td").all_text_contents()]
    assert newest[3] == "audit.view"
    assert sorted(newest[5].split(", ")) == ["action=audit.view", "user=ani", "via=session"]
    # Paging: the newest 100 rows, then a link to the older ones.
    await admin.goto(site.url("/console/audit?sebelum=3"))
    assert [a.strip() for a in await admin.locator("#audit tbody tr td:nth-child(1)").all_text_contents()] == ["2", "1"]
    assert await admin.locator("a[rel=next]").count() == 0
    # Another day's log is empty.
    await admin.goto(site.url("/console/audit?tanggal=2001-01-01"))
    assert await admin.locator("#audit tbody tr").all_text_contents() == ["Tidak ada catatan audit yang cocok."]
