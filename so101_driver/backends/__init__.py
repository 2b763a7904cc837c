from .base import Backend, BackendError

__all__ = ["Backend", "BackendError"]
