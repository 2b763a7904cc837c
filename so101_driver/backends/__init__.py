from .base import ArmDisconnected, Backend, BackendError

__all__ = ["ArmDisconnected", "Backend", "BackendError"]
