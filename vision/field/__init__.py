"""Whole smear fields: find cells, gate on photo quality, classify white cells, count, draw."""
