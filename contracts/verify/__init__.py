"""`dapi-contract verify-server`: properties any server of the dapi contract must hold."""

from contracts.verify.properties import PROPERTIES, PROPERTY_NAMES
from contracts.verify.runner import verify_server

__all__ = ["PROPERTIES", "PROPERTY_NAMES", "verify_server"]
