"""`camera_node`: one USB camera (or video file) on a sensor_msgs/Image topic, stamped at capture."""

from __future__ import annotations

import sys
import time

from builtin_interfaces.msg import Time
from rclpy.node import Node
from sensor_msgs.msg import Image

from .frame_source import CameraError, CameraSettings, FrameSource, capture_stamp_ns
from .node_runner import declare_parameters, run_node
from .ros_messages import color_image_msg

PARAMETERS = {
    "device": ("0", "camera index, /dev/videoN path, or a video file"),
    "width": (640, "image width, pixels", (16, 8192)),
    "height": (480, "image height, pixels", (16, 8192)),
    "fps": (30.0, "frames per second", (0.1, 1000.0)),
    "topic": ("image_raw", "topic to publish on (remap it, e.g. to /so101/wrist/image_raw)"),
    "frame_id": ("camera", "header.frame_id of the images"),
    "loop": (False, "video files: start again at the end"),
}


class CameraNode(Node):
    def __init__(self, node_name: str = "so101_camera", **node_options):
        super().__init__(node_name, **node_options)
        p = declare_parameters(self, PARAMETERS)
        self.settings = CameraSettings(device=str(p["device"]), width=p["width"], height=p["height"],
                                       fps=p["fps"], loop=p["loop"])
        self.frame_id = p["frame_id"]
        self.source = FrameSource(self.settings)
        # REP-2003: sensor drivers publish with the system default (reliable) QoS, so that reliable
        # subscribers (RViz, image_view) connect too; consumers wanting the newest frame subscribe best-effort.
        self.publisher = self.create_publisher(Image, p["topic"], 10)
        self.timer = self.create_timer(1.0 / self.settings.fps, self._on_timer)
        self.get_logger().info(
            f"Camera {self.settings.device} on {self.publisher.topic_name}: "
            f"{self.settings.width}x{self.settings.height} at {self.settings.fps:g} fps"
        )

    def _on_timer(self) -> None:
        frame = self.source.read()
        if frame is None:
            self.get_logger().warning(f"Camera {self.settings.device}: no more frames; stopping capture")
            self.timer.cancel()
            return
        # Stamped when the device captured it (V4L2's buffer time), not when the read returned:
        # an old frame must look old to the policy's age check. Files: the time of the read.
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns = capture_stamp_ns(now_ns, time.monotonic(), frame.captured)
        stamp = Time(sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        self.publisher.publish(color_image_msg(stamp, frame.image, self.frame_id, encoding="bgr8"))

    def close(self) -> None:
        self.source.close()


USER_ERRORS = (CameraError,)


def main(args=None) -> int:
    return run_node(CameraNode, "so101_camera", USER_ERRORS, args)


if __name__ == "__main__":
    sys.exit(main())
