"""Outbound delivery of platform notices: the worker, push and Standard Webhooks, the address guard."""
