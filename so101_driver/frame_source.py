"""Frames from a USB camera (or a video file) through OpenCV, without ROS."""

from __future__ import annotations

import glob
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

# A device clock further than this from time.monotonic() is some other clock: not used.
CAPTURE_CLOCK_TOLERANCE_S = 1.0


class CameraError(RuntimeError):
    """A camera that cannot be opened or read; the message says what to check."""


@dataclass(frozen=True)
class CameraSettings:
    device: str = "0"  # an index ("0"), a device path (/dev/video2) or a video file
    width: int = 640
    height: int = 480
    fps: float = 30.0
    loop: bool = False  # video files: start again at the end


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR at the configured size
    captured: float | None  # time.monotonic() when the device filled the buffer; None: not known (a file)


def capture_stamp_ns(now_ns: int, now_monotonic: float, captured: float | None) -> int:
    """The frame's stamp on the node's clock: now, less how long ago the device captured it."""
    if captured is None:
        return now_ns
    return now_ns - round((now_monotonic - captured) * 1e9)


class FrameSource:
    def __init__(self, settings: CameraSettings):
        self.settings = settings
        self.is_device = not Path(settings.device).is_file()
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
        if self.is_device:
            # One driver buffer: a read returns the newest frame, not one queued for several periods.
            self.capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)

    def read(self) -> Frame | None:
        """The next frame at the configured size, with its capture time; None at the end of a video file."""
        ok, image = self.capture.read()
        if not ok and self.settings.loop:
            self.capture.set(cv2.CAP_PROP_POS_FRAMES, 0)
            ok, image = self.capture.read()
        if not ok:
            return None
        captured = self._captured()
        if image.shape[:2] != (self.settings.height, self.settings.width):
            # Cameras (and files) that cannot deliver the size asked for are resized here.
            image = cv2.resize(image, (self.settings.width, self.settings.height), interpolation=cv2.INTER_AREA)
        return Frame(image, captured)

    def _captured(self) -> float | None:
        """The V4L2 buffer's timestamp (CLOCK_MONOTONIC, which OpenCV gives in ms), where it is one."""
        if not self.is_device:
            return None  # a file's POS_MSEC is its position in the video
        milliseconds = self.capture.get(cv2.CAP_PROP_POS_MSEC)
        if milliseconds <= 0:
            return None
        captured = milliseconds / 1e3
        if not 0.0 <= time.monotonic() - captured < CAPTURE_CLOCK_TOLERANCE_S:
            return None
        return captured

    def close(self) -> None:
        self.capture.release()
