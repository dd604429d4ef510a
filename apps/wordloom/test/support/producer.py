"""A Python service on the loomtrace outbox, as outbox-python.test.ts runs it.

Its own table, its change and the outbox event commit in one transaction; a second change fails
after its enqueue and rolls back, event and all; a third passes a malformed traceparent.
Usage: DATABASE_URL=postgres://... python3 producer.py   (prints one JSON object)
"""
import json
import os
import secrets

import psycopg
from psycopg.types.json import Jsonb

ENQUEUE = """select loomtrace.enqueue(%s, %s, %s, %s, %s, %s,
                                      traceparent => %s, tracestate => %s, request_id => %s, attributes => %s)"""


def new_span():
    """The ids a Python tracer would give its span (here: random, sampled)."""
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return {"trace_id": trace_id, "span_id": span_id, "traceparent": f"00-{trace_id}-{span_id}-01"}


class Abort(Exception):
    pass


def ship(conn, order_id, span, fail=False):
    """Changes the order and enqueues its event in one transaction; returns the event id."""
    with conn.transaction():
        (version,) = conn.execute(
            "update py_orders set status = 'shipped', version = version + 1 where id = %s returning version", (order_id,)
        ).fetchone()
        (event_id,) = conn.execute(
            ENQUEUE,
            ("orders", "order.shipped", "order", str(order_id), version, Jsonb({"status": "shipped"}),
             span["traceparent"], "py=1", f"req-{order_id}", Jsonb({"tenant": "acme"})),
        ).fetchone()
        if fail:
            raise Abort()
    return str(event_id)


with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
    conn.execute("create table py_orders (id bigint primary key, status text not null, version bigint not null)")
    conn.execute("insert into py_orders values (1, 'new', 1), (2, 'new', 1), (3, 'new', 1)")
    committed, rolled_back = new_span(), new_span()
    committed["event_id"] = ship(conn, 1, committed)
    try:
        ship(conn, 2, rolled_back, fail=True)
    except Abort:
        pass
    malformed = {"traceparent": "00-NOT-A-TRACEPARENT-01"}
    malformed["event_id"] = ship(conn, 3, malformed)
    print(json.dumps({"committed": committed, "rolled_back": rolled_back, "malformed": malformed}))
