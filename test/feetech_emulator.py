"""STS3215 servos emulated on a pseudo-terminal, speaking Feetech protocol 0.

lerobot's FeetechMotorsBus (through scservo_sdk and pyserial) opens the pty's slave path as if it
were the arm's USB serial adapter. Implemented: PING, READ, WRITE, SYNC_READ, SYNC_WRITE, the
broadcast id, status packets, and the registers lerobot uses, read from lerobot's own control
table. A servo with torque on reaches its Goal_Position at once; a muted servo stops answering; a
servo told `dies_at_read` goes silent for good at the first read of that register; one told
`misses_pings` (`misses_reads`, per register) leaves that many pings (reads) unanswered; `spoils_reads` (per
register) answers the next reads with these values instead, checksum and all (noise the checksum missed); a
`blocked` one takes goals but does not move (an obstacle); `reply_delay` holds every reply back (a slow adapter, and a wider window for a signal to land mid-read).
`corrupt_replies` spoils that fraction of status packets (a bad checksum: noise on the line);
`record_writes` off keeps no write log (hours of soak), and `on_goal` sees every Goal_Position taken, and the
goal in force when torque goes on (where the servo then moves).
`unplug` and `replug` are the USB cable pulled and put back: the port's path disappears (reads and
writes on it fail as on a vanished /dev/ttyACM0) and comes back, while the servos keep their power,
registers and goals.
"""

from __future__ import annotations

import os
import random
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from typing import NamedTuple

from lerobot.motors.feetech.tables import MODEL_NUMBER_TABLE, STS_SMS_SERIES_CONTROL_TABLE

BROADCAST_ID = 0xFE
PING, READ, WRITE, SYNC_READ, SYNC_WRITE = 0x01, 0x02, 0x03, 0x82, 0x83
REGISTERS = STS_SMS_SERIES_CONTROL_TABLE


def _checksum(body: list[int]) -> int:
    return (~sum(body)) & 0xFF


def _sign_magnitude(value: int, sign_bit: int) -> int:
    magnitude = value & ((1 << sign_bit) - 1)
    return -magnitude if value & (1 << sign_bit) else magnitude


class Write(NamedTuple):
    """A register write as the servo took it, with its torque and EEPROM lock at that moment."""

    register: str
    value: int
    torque_on: bool
    locked: bool


class EmulatedServo:
    def __init__(self, servo_id: int, position: int = 2048):
        self.memory = bytearray(256)
        self.id = servo_id
        self.set("Model_Number", MODEL_NUMBER_TABLE["sts3215"])
        self.set("Firmware_Major_Version", 3)
        self.set("Firmware_Minor_Version", 10)
        self.set("ID", servo_id)
        self.set("Max_Position_Limit", 4095)
        self.set("Present_Position", position)
        self.set("Goal_Position", position)
        self.muted = False
        self.blocked = False  # an obstacle: goals are taken, but the joint stays where it is
        self.dies_at_read: str | None = None
        self.misses_pings = 0  # the next PINGs it leaves unanswered (a reply lost on the line)
        self.misses_reads: dict[str, int] = {}  # register: the next reads of it left unanswered
        self.spoils_reads: dict[str, list[int]] = {}  # register: what its next reads answer instead
        self.writes: list[Write] = []
        self.record_writes = True
        self.on_goal: Callable[[EmulatedServo, int], None] | None = None

    def get(self, name: str) -> int:
        address, length = REGISTERS[name]
        return int.from_bytes(self.memory[address:address + length], "little")

    def set(self, name: str, value: int) -> None:
        address, length = REGISTERS[name]
        self.memory[address:address + length] = int(value).to_bytes(length, "little")

    @property
    def torque_enabled(self) -> bool:
        return self.get("Torque_Enable") == 1

    @property
    def goal_position(self) -> int:
        return _sign_magnitude(self.get("Goal_Position"), 15)

    @property
    def present_position(self) -> int:
        return _sign_magnitude(self.get("Present_Position"), 15)

    def write(self, address: int, data: bytes) -> None:
        torque_was_on = self.torque_enabled
        self.memory[address:address + len(data)] = data
        names = [name for name, (a, _) in REGISTERS.items() if a == address]
        if self.record_writes:
            self.writes.extend(Write(name, self.get(name), self.torque_enabled, self.get("Lock") == 1)
                               for name in names[:1])
        if self.on_goal is not None and (names[:1] == ["Goal_Position"] or (self.torque_enabled and not torque_was_on)):
            self.on_goal(self, self.goal_position)
        if self.torque_enabled and not self.blocked:
            self.set("Present_Position", self.get("Goal_Position"))

    def read(self, address: int, length: int) -> bytes | None:
        """The register bytes, or None when the servo does not answer."""
        if self.dies_at_read is not None and REGISTERS[self.dies_at_read][0] == address:
            self.muted = True
        if self.muted:
            return None
        missed = next((name for name, count in self.misses_reads.items() if count and REGISTERS[name][0] == address),
                      None)
        if missed is not None:
            self.misses_reads[missed] -= 1
            return None
        spoilt = next((name for name, values in self.spoils_reads.items() if values and REGISTERS[name][0] == address),
                      None)
        if spoilt is not None and length == REGISTERS[spoilt][1]:
            return self.spoils_reads[spoilt].pop(0).to_bytes(length, "little")
        return bytes(self.memory[address:address + length])


class FeetechEmulator:
    """Servos 1..n behind a pty; `port` is the path to give lerobot (a link to the pty, so that it stays the
    same across an unplug and a replug, as a udev name does)."""

    def __init__(self, positions: dict[int, int], reply_delay: float = 0.0, corrupt_replies: float = 0.0,
                 seed: int = 0):
        self.reply_delay = reply_delay
        self.corrupt_replies = corrupt_replies
        self.corrupted = 0  # status packets spoilt so far
        self._random = random.Random(seed)
        self.servos = {servo_id: EmulatedServo(servo_id, pos) for servo_id, pos in positions.items()}
        self.lock = threading.Lock()
        self._port_dir = tempfile.mkdtemp(prefix="so101_emulated_arm_")
        self.port = os.path.join(self._port_dir, "ttyACM0")
        self.plugged = False
        self.replug()

    def replug(self) -> None:
        """The cable goes (back) in: a new pty behind the same path, served by a thread of its own."""
        master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.symlink(os.ttyname(self._slave), self.port)
        self._master, self._stop = master, threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(master, self._stop), daemon=True)
        self._thread.start()
        self.plugged = True

    def unplug(self) -> None:
        """The cable is pulled: the pty and the path go; the servos keep what they hold."""
        self._stop.set()
        self._thread.join(timeout=2)
        os.close(self._master)
        os.close(self._slave)
        os.unlink(self.port)
        self.plugged = False

    def close(self) -> None:
        if self.plugged:
            self.unplug()
        shutil.rmtree(self._port_dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- transport --------------------------------------------------------------------------------
    def _serve(self, master: int, stop: threading.Event) -> None:
        buffer = bytearray()
        while not stop.is_set():
            ready, _, _ = select.select([master], [], [], 0.05)
            if not ready:
                continue
            try:
                buffer += os.read(master, 1024)
            except OSError:
                return
            while (packet := self._next_packet(buffer)) is not None:
                with self.lock:
                    reply = self._handle(*packet)
                if reply:
                    time.sleep(self.reply_delay)
                    os.write(master, reply)

    def _next_packet(self, buffer: bytearray) -> tuple[int, int, list[int]] | None:
        start = buffer.find(b"\xff\xff")
        if start < 0:
            buffer.clear()
            return None
        del buffer[:start]
        if len(buffer) < 4:
            return None
        length = buffer[3]
        if len(buffer) < 4 + length:
            return None
        packet = list(buffer[: 4 + length])
        del buffer[: 4 + length]
        servo_id, instruction, params, checksum = packet[2], packet[4], packet[5:-1], packet[-1]
        if _checksum(packet[2:-1]) != checksum:
            return self._next_packet(buffer)
        return servo_id, instruction, params

    def _status(self, servo_id: int, params: bytes = b"", error: int = 0) -> bytes:
        body = [servo_id, len(params) + 2, error, *params]
        checksum = _checksum(body)
        if self.corrupt_replies and self._random.random() < self.corrupt_replies:
            self.corrupted += 1
            checksum ^= 0x5A
        return bytes([0xFF, 0xFF, *body, checksum])

    # -- instructions -----------------------------------------------------------------------------
    def _handle(self, servo_id: int, instruction: int, params: list[int]) -> bytes:
        if instruction == SYNC_WRITE:
            address, length = params[0], params[1]
            for offset in range(2, len(params), length + 1):
                servo = self.servos.get(params[offset])
                if servo is not None and not servo.muted:
                    servo.write(address, bytes(params[offset + 1: offset + 1 + length]))
            return b""
        if instruction == SYNC_READ:
            address, length = params[0], params[1]
            replies = b""
            for target in params[2:]:
                servo = self.servos.get(target)
                data = servo.read(address, length) if servo is not None else None
                if data is not None:
                    replies += self._status(target, data)
            return replies
        targets = list(self.servos) if servo_id == BROADCAST_ID else [servo_id]
        replies = b""
        for target in targets:
            servo = self.servos.get(target)
            if servo is None or servo.muted:
                continue
            if instruction == PING and servo.misses_pings:
                servo.misses_pings -= 1
            elif instruction == PING:
                replies += self._status(target)
            elif instruction == READ:
                data = servo.read(params[0], params[1])
                replies += self._status(target, data) if data is not None else b""
            elif instruction == WRITE:
                servo.write(params[0], bytes(params[1:]))
                replies += self._status(target)
        return b"" if servo_id == BROADCAST_ID and instruction != PING else replies
