"""camera_node on a video file the test writes: frames, size, encoding, capture stamps."""

import cv2
import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image

from ros_harness import NodeProcess, RosProbe, isolated_ros_env, next_domain_id
from so101_driver.frame_source import CameraError, CameraSettings, FrameSource, capture_stamp_ns


def write_video(path, frames=20, size=(320, 240)):
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, size)
    for k in range(frames):
        frame = np.zeros((size[1], size[0], 3), np.uint8)
        frame[:, :, 2] = 200  # red in BGR
        cv2.putText(frame, str(k), (20, 120), cv2.FONT_HERSHEY_SIMPLEX, 3, (255, 255, 255), 5)
        writer.write(frame)
    writer.release()
    return path


def test_frame_source_reads_resizes_and_loops(tmp_path):
    video = write_video(tmp_path / "cam.avi", frames=3)
    source = FrameSource(CameraSettings(device=str(video), width=160, height=120, loop=True))
    frames = [source.read() for _ in range(5)]
    assert all(f is not None and f.image.shape == (120, 160, 3) for f in frames)
    assert frames[0].image[60, 5, 2] > 150  # still red in BGR order
    assert all(f.captured is None for f in frames)  # a file's position is not a capture time
    source.close()
    once = FrameSource(CameraSettings(device=str(video), width=320, height=240))
    assert [once.read() is None for _ in range(4)] == [False, False, False, True]


class V4L2StandIn:
    """What OpenCV's V4L2 capture reports: POS_MSEC is the buffer's CLOCK_MONOTONIC timestamp, in ms."""

    def __init__(self, source, captured_ms):
        self.settings, self.captured_ms = {}, captured_ms

    def isOpened(self):
        return True

    def set(self, prop, value):
        self.settings[prop] = value

    def read(self):
        return True, np.zeros((480, 640, 3), np.uint8)

    def get(self, prop):
        return self.captured_ms if prop == cv2.CAP_PROP_POS_MSEC else 0.0


@pytest.mark.parametrize("age_s, expected", [(0.05, "age"), (5.0, None), (None, None)])
def test_device_frames_carry_their_capture_time(monkeypatch, age_s, expected):
    """A frame 50 ms old is stamped 50 ms ago; a timestamp on another clock (or none) is not used."""
    import time

    import so101_driver.frame_source as frame_source

    captured = None if age_s is None else time.monotonic() - age_s
    monkeypatch.setattr(frame_source.cv2, "VideoCapture",
                        lambda source: V4L2StandIn(source, 0.0 if captured is None else captured * 1e3))
    source = FrameSource(CameraSettings(device="/dev/video0"))
    assert source.capture.settings[cv2.CAP_PROP_BUFFERSIZE] == 1  # the newest frame, not a queued one
    frame = source.read()
    if expected is None:
        assert frame.captured is None
    else:
        assert frame.captured == pytest.approx(captured, abs=1e-6)
    now_ns = 1_700_000_000_000_000_000
    assert capture_stamp_ns(now_ns, 100.0, 99.95) == now_ns - 50_000_000
    assert capture_stamp_ns(now_ns, 100.0, None) == now_ns


def test_missing_camera_is_explained():
    with pytest.raises(CameraError, match="Video devices on this machine"):
        FrameSource(CameraSettings(device="/dev/video99"))


def test_camera_node_publishes_stamped_frames(tmp_path):
    video = write_video(tmp_path / "wrist.avi")
    domain = next_domain_id()
    node = NodeProcess("camera_node", [
        "--ros-args", "-p", f"device:={video}", "-p", "width:=320", "-p", "height:=240", "-p", "loop:=true",
        "-p", "topic:=/so101/wrist/image_raw", "-p", "frame_id:=wrist_camera",
    ], isolated_ros_env(domain), tmp_path / "camera.log")
    probe = RosProbe(domain)
    frames, reliable_frames = [], []
    probe.node.create_subscription(Image, "/so101/wrist/image_raw", frames.append, qos_profile_sensor_data)
    # RViz and image_view subscribe reliable: REP-2003 has the driver publish so that they connect.
    probe.node.create_subscription(Image, "/so101/wrist/image_raw", reliable_frames.append, 10)
    try:
        probe.spin_until(lambda: len(frames) >= 10 and reliable_frames, 60, lambda: f"camera frames (log:\n{node.output})")
        frame = frames[-1]
        assert (frame.width, frame.height, frame.encoding, frame.header.frame_id) == (320, 240, "bgr8", "wrist_camera")
        pixels = np.frombuffer(bytes(frame.data), np.uint8).reshape(240, 320, 3)
        assert pixels[120, 5, 2] > 150 and pixels[120, 5, 0] < 60
        stamps = [f.header.stamp.sec + f.header.stamp.nanosec * 1e-9 for f in frames]
        assert all(np.diff(stamps) > 0)
        assert 0.02 < np.median(np.diff(stamps)) < 0.06  # about 30 fps
    finally:
        probe.close()
        assert node.stop() == 0, node.output
