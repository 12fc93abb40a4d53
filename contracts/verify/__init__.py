"""`dapi-contract verify-server`: properties any server of the dapi contract must hold."""

from contracts.verify.properties import DISCOVERY, PROPERTIES, PROPERTY_NAMES
from contracts.verify.runner import ServerUnreachable, verify_server

__all__ = ["DISCOVERY", "PROPERTIES", "PROPERTY_NAMES", "ServerUnreachable", "verify_server"]
