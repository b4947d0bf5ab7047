"""A stand-in order service for examples/order-approval.json: GET /orders/<id> answers the order as JSON.

Run it beside the server (python3 examples/order-service.py) so the workflow's http node has something
to fetch: order 42 totals 250 and so needs a person's approval, order 7 totals 60 and does not.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ORDERS = {"42": 250, "7": 60}


class Orders(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        order_id = self.path.removeprefix("/orders/")
        total = ORDERS.get(order_id)
        found = total is not None
        status, body = (200, {"id": order_id, "total": total}) if found else (404, {"error": "no such order"})
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


if __name__ == "__main__":
    print("order service on http://127.0.0.1:8080/orders/42")
    ThreadingHTTPServer(("127.0.0.1", 8080), Orders).serve_forever()
