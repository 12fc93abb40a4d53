"""Interop tests: real third-party Binance clients against the live mock."""
