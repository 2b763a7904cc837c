from .base import ArmDisconnected, Backend, BackendError, agreed_reading

__all__ = ["ArmDisconnected", "Backend", "BackendError", "agreed_reading"]
