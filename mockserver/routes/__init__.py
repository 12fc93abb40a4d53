"""Blueprints: the exchange API, compatibility routes and the control plane."""
