"""Figures for monitoring: requests of this process, and the registry's state from the database."""

from __future__ import annotations

import time
from collections import defaultdict

from app.clock import now
from app.domain.notices import POLL
from app.storage.engine import read_moment, run_sql

# per process: (method, route, status) -> count, and (method, route) -> [seconds, count]
REQUESTS: dict[tuple[str, str, int], int] = defaultdict(int)
DURATIONS: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0.0, 0])
STARTED = time.time()

STATE_QUERIES = {
    "heirline_notices": "SELECT status, count(*) AS n FROM notice GROUP BY status",
    "heirline_release_cases": "SELECT status, count(*) AS n FROM release_case GROUP BY status",
    "heirline_release_tasks": "SELECT status, count(*) AS n FROM release_task GROUP BY status",
    "heirline_legacy_cases": "SELECT status, count(*) AS n FROM legacy_case GROUP BY status",
    "heirline_outbox_messages": "SELECT status, count(*) AS n FROM outbox_message GROUP BY status",
}
HELP = {
    "heirline_notices": "Platform notices by delivery status",
    "heirline_release_cases": "Release cases by status",
    "heirline_release_tasks": "Release tasks by status",
    "heirline_legacy_cases": "Legacy cases by status",
    "heirline_outbox_messages": "Messages to people by status (kept: no transport configured; pending and"
                                " sending: on their way; failed: given up after their last attempt)",
}


def record(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS[(method, route, status)] += 1
    bucket = DURATIONS[(method, route)]
    bucket[0] += seconds
    bucket[1] += 1


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


async def _poll_streams() -> list[str]:
    """For each enabled stream a platform polls: how long since it last polled (since the stream was made,
    if never) and how many notices wait for it. A platform that stopped polling shows as a growing idle
    time with notices waiting: alert on both."""
    rows = await run_sql(
        "SELECT p.slug AS platform, s.last_polled_at AS polled, s.created_at AS created,"
        " (SELECT count(*) FROM notice n WHERE n.stream = s.id AND n.status = 'pending') AS waiting"
        " FROM ssf_stream s JOIN platform p ON p.id = s.platform"
        f" WHERE s.status = 'enabled' AND s.delivery_method = '{POLL}' ORDER BY p.slug")
    moment = now()
    idle = ["# HELP heirline_poll_stream_idle_seconds Since the platform last polled its stream (since the"
            " stream was made, if never)", "# TYPE heirline_poll_stream_idle_seconds gauge"]
    waiting = ["# HELP heirline_poll_stream_waiting_notices Notices waiting for the platform's poll",
               "# TYPE heirline_poll_stream_waiting_notices gauge"]
    for row in rows:
        label = f'platform="{_label(row["platform"])}"'
        since = read_moment(row["polled"] or row["created"])
        idle.append(f"heirline_poll_stream_idle_seconds{{{label}}} {max(0.0, (moment - since).total_seconds()):.0f}")
        waiting.append(f"heirline_poll_stream_waiting_notices{{{label}}} {row['waiting']}")
    return idle + waiting


async def exposition() -> str:
    """The Prometheus text format (version 0.0.4)."""
    lines = ["# HELP heirline_http_requests_total Requests answered by this process",
             "# TYPE heirline_http_requests_total counter"]
    for (method, route, status), count in sorted(REQUESTS.items()):
        lines.append(f'heirline_http_requests_total{{method="{method}",route="{_label(route)}",status="{status}"}} {count}')
    lines += ["# HELP heirline_http_request_seconds Time spent answering, by route",
              "# TYPE heirline_http_request_seconds summary"]
    for (method, route), (seconds, count) in sorted(DURATIONS.items()):
        labels = f'method="{method}",route="{_label(route)}"'
        lines.append(f"heirline_http_request_seconds_sum{{{labels}}} {seconds:.6f}")
        lines.append(f"heirline_http_request_seconds_count{{{labels}}} {count}")
    for name, sql in STATE_QUERIES.items():
        lines += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge"]
        for row in await run_sql(sql):
            lines.append(f'{name}{{status="{_label(str(row["status"]))}"}} {row["n"]}')
    # notices a platform polls for wait past every real moment (AWAITING_POLL): the minimum is over ours
    oldest = await run_sql("SELECT min(next_attempt_at) AS at FROM notice WHERE status IN ('pending', 'sending')")
    age = 0.0
    if oldest and oldest[0]["at"] is not None:
        age = max(0.0, (now() - read_moment(oldest[0]["at"])).total_seconds())
    lines += ["# HELP heirline_oldest_pending_notice_seconds How long the oldest notice due for delivery by the"
              " worker has waited (notices waiting for a platform's poll are not counted)",
              "# TYPE heirline_oldest_pending_notice_seconds gauge", f"heirline_oldest_pending_notice_seconds {age:.0f}",
              *await _poll_streams(),
              "# HELP heirline_process_start_time_seconds Start of this process",
              "# TYPE heirline_process_start_time_seconds gauge", f"heirline_process_start_time_seconds {STARTED:.0f}"]
    return "\n".join(lines) + "\n"
