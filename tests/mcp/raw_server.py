"""An upstream MCP server written against the wire, not an SDK: it logs every ``tools/call``'s
whole ``params`` to ``BANK_LOG``, so a test sees everything the gateway sent, extra fields too."""

from __future__ import annotations

import json
import os
import sys

TOOL = {
    "name": "transfer_money",
    "description": "Transfer money to an account.",
    "inputSchema": {
        "type": "object",
        "properties": {"to": {"type": "string"}, "amount": {"type": "number"}},
        "required": ["to", "amount"],
    },
}


def answer(message_id: object, result: dict[str, object]) -> None:
    sys.stdout.write(json.dumps({"jsonrpc": "2.0", "id": message_id, "result": result}) + "\n")
    sys.stdout.flush()


for line in sys.stdin:
    message = json.loads(line)
    method = message.get("method")
    if method == "initialize":
        answer(
            message["id"],
            {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "raw", "version": "0"},
            },
        )
    elif method == "tools/list":
        answer(message["id"], {"tools": [TOOL]})
    elif method == "tools/call":
        with open(os.environ["BANK_LOG"], "a", encoding="utf-8") as log:
            log.write(json.dumps({"params": message["params"]}) + "\n")
        answer(message["id"], {"content": [{"type": "text", "text": "done"}], "isError": False})
    elif "id" in message:
        answer(message["id"], {})
