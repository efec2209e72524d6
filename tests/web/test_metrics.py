"""`/metrics` in Prometheus text format: requests by route template, and the registry's state."""

from __future__ import annotations

import re

from tests.support import make_carrier, send_event


async def test_metrics_count_requests_and_report_state(client, owner):
    await client.get("/v1/me/bindings", headers=owner.headers)
    await client.get("/v1/me/bindings/00000000-0000-0000-0000-000000000000", headers=owner.headers)
    carrier = await make_carrier()
    await send_event(client, carrier, "number.disconnected", owner.phone)
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert re.search(r'heirline_http_requests_total\{method="GET",route="/v1/me/bindings",status="200"\} \d+', text)
    assert 'route="/v1/me/bindings/{binding_id}",status="404"' in text  # templates, not ids
    assert "00000000-0000" not in text
    assert re.search(r'heirline_release_cases\{status="open"\} 1', text)
    assert "# TYPE heirline_notices gauge" in text and "heirline_oldest_pending_notice_seconds" in text
    assert re.search(r'heirline_outbox_messages\{status="kept"\} [1-9]', text)  # the owner's sign-up code, alerts
