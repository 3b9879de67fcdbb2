"""Simulated model-server pods (built in a later issue); empty for now."""
