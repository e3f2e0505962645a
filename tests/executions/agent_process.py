"""An agent process for the restart test: one guarded call under a fixed call id.

    python agent_process.py CALL_ID RECORD_FILE [RUN_ID]

Talks to the server at FUNCTIONLAYER_API_BASE with FUNCTIONLAYER_API_TOKEN. Without RUN_ID the
run id is random per process, as for an agent that does not pin one. Each execution of the body
appends a line to RECORD_FILE; the tool result is printed on stdout.
"""

from __future__ import annotations

import os
import sys

from functionlayer import FunctionLayer, call_id_scope


def main() -> None:
    call_id, record = sys.argv[1], sys.argv[2]
    run_id = sys.argv[3] if len(sys.argv) > 3 else None
    fl = FunctionLayer(run_id=run_id)

    @fl.require_approval()
    def transfer(amount: int) -> str:
        """Move money."""
        with open(record, "a", encoding="utf-8") as out:
            out.write(f"{os.getpid()} {amount}\n")
        return f"moved {amount}"

    print("waiting", flush=True)
    with call_id_scope(call_id):
        print(transfer(100), flush=True)


if __name__ == "__main__":
    main()
