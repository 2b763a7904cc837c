"""Frames from a USB camera (or a video file) through OpenCV, without ROS."""

from __future__ import annotations

import glob
from dataclasses import dataclass

import cv2
import numpy as np


class CameraError(RuntimeError):
    """A camera that cannot be opened or read; the message says what to check."""


@dataclass(frozen=True)
class CameraSettings:
    device: str = "0"  # an index ("0"), a device path (/dev/video2) or a video file
    width: int = 640
    height: int = 480
    fps: float = 30.0
    loop: bool = False  # video files: start again at the end


class FrameSource:
    def __init__(self, settings: CameraSettings):
        self.settings = settings
        source = int(settings.device) if settings.device.isdigit() else settings.device
        self.capture = cv2.VideoCapture(source)
        if not self.capture.isOpened():
            available = ", ".join(sorted(glob.glob("/dev/video*"))) or "none"
            raise CameraError(
                f"Could not open camera '{settings.device}'. Video devices on this machine: {available}. "
                "Set the device parameter to one of them (or to a video file)."
            )
        self.capture.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
        self.capture.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
        self.capture.set(cv2.CAP_PROP_FPS, settings.fps)

    def read(self) -> np.ndarray | None:
        """The next BGR frame at the configured size; None at the end of a video file."""
        ok, frame = self.capture.read()
        if not ok and self.settings.loop:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, frame = self.capture.read()
        if not ok:
            return None
        if frame.shape[:2] != (self.settings.height, self.settings.width):
            # Cameras (and files) that cannot deliver the size asked for are resized here.
            frame = cv2.resize(frame, (self.settings.width, self.settings.height), interpolation=cv2.INTER_AREA)
        return frame

    def close(self) -> None:
        self.capture.release()
