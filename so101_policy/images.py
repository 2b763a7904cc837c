"""sensor_msgs Image / CompressedImage to RGB arrays with numpy and OpenCV (cv_bridge is not needed)."""

from __future__ import annotations

import cv2
import numpy as np

CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1}


class ImageFormatError(ValueError):
    """An image the policy cannot use; the message names what arrived and what is accepted."""


def image_to_rgb(msg) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a sensor_msgs/Image in rgb8, bgr8 or mono8."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise ImageFormatError(f"image encoding '{msg.encoding}' is not supported; publish one of {list(CHANNELS)}.")
    row_bytes = msg.width * channels
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8)
    if msg.step < row_bytes or data.size < msg.step * msg.height:
        raise ImageFormatError(
            f"{msg.encoding} image of {msg.width}x{msg.height} needs step >= {row_bytes} and "
            f"{msg.step * msg.height} bytes; got step {msg.step} and {data.size} bytes."
        )
    # Rows may be padded (step > width * channels): slice the padding away.
    image = data[: msg.step * msg.height].reshape(msg.height, msg.step)[:, :row_bytes]
    image = image.reshape(msg.height, msg.width, channels)
    if msg.encoding == "bgr8":
        return np.ascontiguousarray(image[..., ::-1])
    if msg.encoding == "mono8":
        return np.repeat(image, 3, axis=2)
    return image.copy()  # a writable array of its own, not a view of the message buffer


def compressed_to_rgb(msg) -> np.ndarray:
    """An (H, W, 3) uint8 RGB array from a sensor_msgs/CompressedImage (jpeg or png)."""
    # image_transport writes e.g. "rgb8; jpeg compressed bgr8"; a bare "jpeg" or "png" is common too.
    if not any(kind in msg.format.lower() for kind in ("jpeg", "jpg", "png")):
        raise ImageFormatError(f"compressed format '{msg.format}' is not supported; publish jpeg or png.")
    decoded = cv2.imdecode(np.frombuffer(bytes(msg.data), dtype=np.uint8), cv2.IMREAD_COLOR)
    if decoded is None:
        raise ImageFormatError(f"could not decode the {msg.format} image ({len(msg.data)} bytes).")
    return cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
