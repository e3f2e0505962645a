"""FunctionLayer with nothing but the core: a function that asks you before it runs.

    pip install functionlayer-ai
    python examples/core/quickstart.py

Answer `y` to approve. Anything else rejects: the call returns a message for the agent instead
of running (``n`` then asks for optional feedback). With FUNCTIONLAYER_API_BASE set, the request
goes to a FunctionLayer server instead of this terminal.
"""

from __future__ import annotations

from functionlayer import FunctionLayer

fl = FunctionLayer()


@fl.require_approval()
def send_invoice(customer: str, amount_eur: int) -> str:
    """Send an invoice to a customer."""
    return f"Invoice of {amount_eur} EUR sent to {customer}."


def main() -> None:
    # An agent framework would make this call from the model's tool call; here we make it.
    print(send_invoice("ACME Corp", 1200))


if __name__ == "__main__":
    main()
