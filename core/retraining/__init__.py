"""Retraining from the chat: expert corrections plus a replay sample, gated before promotion."""
