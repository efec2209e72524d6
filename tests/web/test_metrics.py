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


async def test_a_platform_that_stops_polling_shows_in_the_metrics(client):
    import datetime as dt

    from app.services import streams
    from app.storage.tables import Platform, Stream

    creds = await streams.add_platform("Renewal App", poll=True, all_subjects=True)
    slug = (await Platform.select(Platform.slug).where(Platform.name == "Renewal App").first())["slug"]
    carrier = await make_carrier()
    for n in range(2):
        await send_event(client, carrier, "number.disconnected", f"+86139111122{n:02d}")
    await Stream.update({Stream.created_at: dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)}).where(
        Stream.stream_id == creds.stream_id)

    def figure(text: str, name: str) -> int:
        return int(re.search(rf'{name}\{{platform="{slug}"\}} (\d+)', text).group(1))

    text = (await client.get("/metrics")).text
    assert figure(text, "heirline_poll_stream_waiting_notices") == 2
    assert figure(text, "heirline_poll_stream_idle_seconds") >= 7200  # never polled: since the stream was made
    auth = {"Authorization": f"Bearer {creds.api_token}"}
    polled = (await client.post(f"/ssf/poll/{creds.stream_id}", json={"returnImmediately": True}, headers=auth)).json()
    await client.post(f"/ssf/poll/{creds.stream_id}", json={"ack": list(polled["sets"]), "maxEvents": 0}, headers=auth)
    text = (await client.get("/metrics")).text
    assert figure(text, "heirline_poll_stream_idle_seconds") < 60
    assert figure(text, "heirline_poll_stream_waiting_notices") == 0
