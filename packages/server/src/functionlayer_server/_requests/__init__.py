"""The life of a request, one module per concept; ``ApprovalService`` (``_service``) is their
façade. Every write to a request goes through ``_ledger.Ledger``: the one compare-and-set,
which stores the change, its webhook rows and its delivery jobs in one transaction, then wakes
waiters and tells listeners.

Imports only go down this list: ``_records`` → ``_validate`` → ``_events`` → ``_waiters`` →
``_presence`` → ``_ledger`` → ``_audit`` → ``_authority`` → ``_part`` → ``_at_creation`` →
``_create``; ``_decide``, ``_ending``, ``_listing``, ``_groups``, ``_granting``, ``_executions``.
"""
