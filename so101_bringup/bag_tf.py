"""What robot_state_publisher would have published, for a bag: /robot_description, /tf_static, and a
/tf per joint state, so a bag opened in Foxglove (or played into RViz) shows the arm moving.

Serialized with rosbags' message types (tf2_msgs is not among the ROS wheels on PyPI); the
transforms are the URDF's joints (so101_driver.robot_description.Kinematics), stamped with the
joint state's stamp as robot_state_publisher stamps them.
"""

from __future__ import annotations

from so101_driver.robot_description import Kinematics, UrdfJoint, quaternion_xyzw, robot_description

from . import bag_format


class BagTransforms:
    def __init__(self):
        self.urdf = robot_description()
        self.kinematics = Kinematics(self.urdf)
        self.store = bag_format.typestore()

    def description(self) -> bytes:
        """/robot_description: the URDF as a std_msgs/String."""
        return self.store.serialize_cdr(self.store.types[bag_format.STRING](data=self.urdf), bag_format.STRING)

    def static(self, stamp_ns: int) -> bytes:
        """/tf_static: the fixed joints (the tool frame)."""
        return self._message(stamp_ns, [(joint, 0.0) for joint in self.kinematics.fixed])

    def from_joint_state(self, data: bytes) -> bytes:
        """/tf for a serialized sensor_msgs/JointState: every moving joint the state names."""
        from rclpy.serialization import deserialize_message
        from sensor_msgs.msg import JointState

        state = deserialize_message(data, JointState)  # as the recorder received it
        angles = dict(zip(state.name, state.position))
        stamp_ns = bag_format.stamp_ns(state.header)
        return self._message(stamp_ns, [(joint, float(angles[joint.name])) for joint in self.kinematics.moving
                                        if joint.name in angles])

    def _message(self, stamp_ns: int, joints: list[tuple[UrdfJoint, float]]) -> bytes:
        types = self.store.types
        stamp = types["builtin_interfaces/msg/Time"](sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000)
        transforms = []
        for joint, angle in joints:
            matrix = joint.transform(angle)
            x, y, z, w = quaternion_xyzw(matrix[:3, :3])
            transforms.append(types["geometry_msgs/msg/TransformStamped"](
                header=types["std_msgs/msg/Header"](stamp=stamp, frame_id=joint.parent),
                child_frame_id=joint.child,
                transform=types["geometry_msgs/msg/Transform"](
                    translation=types["geometry_msgs/msg/Vector3"](*(float(v) for v in matrix[:3, 3])),
                    rotation=types["geometry_msgs/msg/Quaternion"](x=x, y=y, z=z, w=w)),
            ))
        return self.store.serialize_cdr(types[bag_format.TF_MESSAGE](transforms=transforms), bag_format.TF_MESSAGE)
