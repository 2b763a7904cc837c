"""eval_manager: runs evaluation episodes over the ROS graph and writes the results.

Each episode: pause and clear the policy, reset (sim: the seeded /so101/reset; real arm: the
operator puts the cube and says start), enable the policy, mark the start on
/so101/episode_marker; it ends on success (sim: /so101/episode_status; real arm: the operator),
at its maximum length, or when no chunk has come for stall_timeout_s; the policy is paused, the end
marked, the outcome recorded. The operator uses the services so101/eval/{start,success,failure}
(std_srvs/Trigger), or the keyboard through `so101 eval`; the node itself never reads input.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.task import Future
from sensor_msgs.msg import JointState
from std_msgs.msg import String
from std_srvs.srv import SetBool, Trigger
from trajectory_msgs.msg import JointTrajectory

from so101_driver.lockstep import TickInputs
from so101_driver.lockstep_ros import TICK_INPUT_QOS, LockstepParticipant, stamp_ns
from so101_driver.node_runner import declare_parameters, run_node
from so101_driver.ros_messages import time_to_sec

from . import bag_format
from .episode_runner import EpisodeLimits, EpisodeRunner, Phase
from .evaluation import EvalRun, Outcome

PARAMETERS = {
    "episodes": (10, "episodes to run", (1, 1_000_000)),
    "sim": (True, "true: seeded sim resets and automatic success; false: the operator resets and judges"),
    "max_episode_s": (30.0, "maximum episode length, s: the episode ends as a timeout", (0.1, 86400.0)),
    "stall_timeout_s": (5.0, "s without an action chunk before the episode ends as stalled", (0.1, 86400.0)),
    "output_dir": ("outputs/eval", "where results.json and results.md go"),
    "run_name": ("", "name of this run in the results (default: the output directory's name)"),
    "bags_dir": ("", "where the recorder writes a bag per episode (empty: not recording)"),
    "policy": ("", "for the results: act or smolvla"),
    "checkpoint": ("", "for the results: the checkpoint evaluated"),
    "cameras": ("wrist,overhead", "for the results: the cameras the policy sees"),
    "backend": ("torch", "for the results: where the policy's forward pass ran"),
    "lockstep": (False, "sim: a lockstep participant; episodes start, are watched and end on exact ticks"),
    "graph_timeout": (180.0, "wall s to wait for the services of the policy (and the sim) before giving up",
                      (1.0, 86400.0)),
}


class GraphIncomplete(RuntimeError):
    """A node the evaluation needs never answered (the policy node died at start-up, say)."""


class EvalManager(Node):
    def __init__(self, **node_options):
        super().__init__("so101_eval_manager", **node_options)
        p = declare_parameters(self, PARAMETERS)
        self.sim = bool(p["sim"])
        self.output_dir = Path(p["output_dir"])
        self.runner = EpisodeRunner(int(p["episodes"]), EpisodeLimits(p["max_episode_s"], p["stall_timeout_s"]))
        settings = {key: p[key] for key in ("policy", "checkpoint", "cameras", "backend", "sim", "max_episode_s")}
        self.run = EvalRun(p["run_name"] or self.output_dir.name, settings)
        self.bags_dir = p["bags_dir"]
        self.finished = False
        self._lock = threading.Lock()
        self._operator_start = False
        self._operator_verdict: Outcome | None = None
        self._steps: list = []
        self._pending: Future | None = None
        self._status_pending: Future | None = None
        self._reset_reply: Future | None = None
        self._waiting_logged: set[str] = set()
        self._graph_timeout = float(p["graph_timeout"])
        self._waiting_since: float | None = None  # steady s, while a service of the graph is missing
        self._processing = self._again = False
        self._round_open = False
        self._round_now = 0.0
        self._status_asked = False
        self._tick_ns = 0
        self.lockstep = bool(p["lockstep"])
        if self.lockstep and not self.sim:
            raise ValueError("lockstep:=true needs sim:=true: the real arm runs on the wall clock.")

        self.marker_pub = self.create_publisher(String, bag_format.EPISODE_MARKER, 10)
        self.policy_reset = self.create_client(Trigger, "so101/policy/reset")
        self.policy_enable = self.create_client(SetBool, "so101/policy/enable")
        self.sim_reset = self.create_client(Trigger, "so101/reset") if self.sim else None
        self.sim_status = self.create_client(Trigger, "so101/episode_status") if self.sim else None
        self.create_subscription(JointTrajectory, bag_format.ACTION_CHUNK, self._on_chunk, 10)
        self.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, 10)
        if not self.sim:
            self.create_service(Trigger, "so101/eval/start", self._on_operator_start)
            self.create_service(Trigger, "so101/eval/success", lambda q, r: self._on_verdict(Outcome.SUCCESS, r))
            self.create_service(Trigger, "so101/eval/failure", lambda q, r: self._on_verdict(Outcome.FAILURE, r))
        self._participant: LockstepParticipant | None = None
        if self.lockstep:
            self._tick_inputs = TickInputs.of(["joint_states"])
            self.create_subscription(JointState, "joint_states", self._on_tick, TICK_INPUT_QOS)
            # Services that are not there yet hold the round (and so the sim): look again.
            self.create_timer(0.05, self._on_lockstep_timer, clock=Clock(clock_type=ClockType.STEADY_TIME))
        else:
            self.create_timer(0.1, self._on_timer)
        # On the steady clock: with no driver there is no /clock, and a dead graph must still be noticed.
        self.create_timer(1.0, self._check_graph, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(
            f"evaluating {self.runner.episodes} episodes ({'sim' if self.sim else 'real arm, operator-judged'}), "
            f"at most {self.runner.limits.max_episode_s:g} s each; results in {self.output_dir}"
        )

    def _now(self) -> float:
        return time_to_sec(self.get_clock().now().to_msg())

    # -- operator -------------------------------------------------------------------------------
    def request_start(self) -> str:
        with self._lock:
            if self.runner.phase is not Phase.BETWEEN:
                return f"cannot start: the episode is {self.runner.phase.value}"
            self._operator_start = True
        return f"starting episode {self.runner.index}"

    def request_verdict(self, outcome: Outcome) -> str:
        with self._lock:
            if self.runner.phase is not Phase.RUNNING:
                return f"no episode is running ({self.runner.phase.value})"
            self._operator_verdict = outcome
        return f"episode {self.runner.index}: {outcome.value}"

    def _on_operator_start(self, request, response):
        response.message = self.request_start()
        response.success = response.message.startswith("starting")
        return response

    def _on_verdict(self, outcome: Outcome, response):
        response.message = self.request_verdict(outcome)
        response.success = response.message.startswith("episode")
        return response

    # -- inputs ---------------------------------------------------------------------------------
    def _on_chunk(self, msg: JointTrajectory) -> None:
        if msg.points:  # an empty one is the paused policy cancelling, not a chunk
            self.runner.on_chunk(self._current_time())

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("so101_policy"):
                values = {kv.key: kv.value for kv in status.values}
                try:
                    self.runner.on_latency(float(values["latency_p50_ms"]), float(values["latency_p95_ms"]))
                except (KeyError, ValueError):
                    pass

    # -- the episode loop -----------------------------------------------------------------------
    # Work comes in rounds: a tick of the lockstep sim (every one of them, at its sim time), or a
    # timer period on the wall clock. A round runs queued service calls one after another, starts
    # or watches the episode, and in lockstep tells the driver the tick is consumed only when all of
    # that is done, so resets, starts and ends fall on the same tick on any machine.
    def _on_timer(self) -> None:
        self._begin_round(self._now())
        self._process()

    def _on_lockstep_timer(self) -> None:
        if self._participant is None and all(client.service_is_ready() for client in self._graph_clients()):
            # Announced only once an episode can start: the sim's first tick waits for it, rather than the
            # manager holding that tick (the driver counting its silence) while the policy node starts up.
            self._participant = LockstepParticipant(self)
        self._process()

    def _on_tick(self, msg: JointState) -> None:
        if self._participant is None:
            return  # a tick before this manager announced itself: not one the sim waits for it on
        tick = self._tick_inputs.update("joint_states", stamp_ns(msg.header.stamp))
        if tick is None:
            if self._tick_inputs.is_repeat(stamp_ns(msg.header.stamp)) and not self._round_open:
                self._participant.repeat()
            return
        self._tick_ns = tick
        self._begin_round(tick * 1e-9)
        self._process()

    def _begin_round(self, now: float) -> None:
        self._round_now = now
        self._round_open = True
        self._status_asked = False

    def _current_time(self) -> float:
        return self._round_now if self.lockstep else self._now()

    def _process(self) -> None:
        """Advance the round as far as it goes without waiting; re-entered by replies and retries."""
        if self._processing:
            self._again = True
            return
        self._processing = True
        try:
            self._again = True
            while self._again:
                self._again = False
                self._advance_round()
        finally:
            self._processing = False

    def _advance_round(self) -> None:
        while self._round_open:
            if self._pending is not None:
                if not self._pending.done():
                    return  # its reply calls _process again
                self._pending = None
            if self._steps:
                outcome = self._steps.pop(0)()
                if isinstance(outcome, Future):
                    self._pending = outcome
                    outcome.add_done_callback(lambda _: self._process())
                continue
            phase = self.runner.phase
            if phase is Phase.DONE:
                if not self.finished:
                    self._finish()
            elif phase is Phase.BETWEEN:
                if self._maybe_begin():
                    continue
                if self.lockstep and self.sim:
                    return  # the sim waits (frozen) until the graph is there to start the episode
            elif self._watch_running_episode():
                continue
            elif self._status_pending is not None:
                return  # its reply calls _process again
            self._close_round()

    def _close_round(self) -> None:
        self._round_open = False
        if self.lockstep:
            self._participant.consumed(self._tick_ns)

    def _ready(self, client) -> bool:
        if client.service_is_ready():
            return True
        if client.srv_name not in self._waiting_logged:
            self._waiting_logged.add(client.srv_name)
            self.get_logger().info(f"waiting for the service {client.srv_name}")
        return False

    def _graph_clients(self) -> list:
        return [self.policy_reset, self.policy_enable] + ([self.sim_reset, self.sim_status] if self.sim else [])

    def _check_graph(self) -> None:
        """Give up, in one line, when the services an episode needs have been missing for graph_timeout."""
        if self.finished or self.runner.phase is not Phase.BETWEEN:
            self._waiting_since = None
            return
        missing = [client.srv_name for client in self._graph_clients() if not client.service_is_ready()]
        now = time.monotonic()
        if not missing:
            self._waiting_since = None
        elif self._waiting_since is None:
            self._waiting_since = now
        elif now - self._waiting_since > self._graph_timeout:
            raise GraphIncomplete(
                f"no {', '.join(missing)} after {self._graph_timeout:g} s: the node that serves it is not running "
                f"(its log says why, e.g. a wrong checkpoint); {len(self.run.episodes)} episodes were evaluated")

    def _maybe_begin(self) -> bool:
        """Queue the calls that start the next episode; False while its services or the operator are not ready."""
        if not all(self._ready(client) for client in self._graph_clients()):
            return False
        with self._lock:
            if not self.sim and not self._operator_start:
                return False
            self._operator_start = False
        steps = [lambda: self.policy_enable.call_async(SetBool.Request(data=False)),
                 lambda: self.policy_reset.call_async(Trigger.Request())]
        if self.sim:
            steps.append(self._call_sim_reset)
        steps += [lambda: self.policy_enable.call_async(SetBool.Request(data=True)), self._mark_start]
        self._steps = steps
        return True

    def _call_sim_reset(self) -> Future:
        self._reset_reply = self.sim_reset.call_async(Trigger.Request())
        return self._reset_reply

    def _mark_start(self) -> None:
        seed = None
        if self._reset_reply is not None and self._reset_reply.result() is not None:
            status = json.loads(self._reset_reply.result().message or "{}")
            seed = status.get("seed")
            if "variant" in status:  # the sim's own word on its task and camera, for the results
                self.run.settings["task_variant"] = status["variant"]
                self.run.settings["overhead_view"] = status.get("overhead_view")
        self.runner.start(self._current_time(), seed)
        self._status_asked = True  # the sim was just reset: nothing to ask this round
        self.marker_pub.publish(String(data=f"{bag_format.EPISODE_START} episode={self.runner.index} seed={seed}"))
        self.get_logger().info(f"episode {self.runner.index} started" + (f" (seed {seed})" if seed is not None else ""))

    def _watch_running_episode(self) -> bool:
        """End the episode if it is over; True when that queued calls to run."""
        with self._lock:
            verdict, self._operator_verdict = self._operator_verdict, None
        if verdict is not None:
            self._end(verdict)
            return True
        if self.sim:
            if self._status_pending is not None:
                if not self._status_pending.done():
                    return False
                reply, self._status_pending = self._status_pending.result(), None
                if reply is not None and reply.success:
                    self._end(Outcome.SUCCESS)
                    return True
            elif not self._status_asked:
                self._status_asked = True
                self._status_pending = self.sim_status.call_async(Trigger.Request())
                self._status_pending.add_done_callback(lambda _: self._process())
                return False
        limit = self.runner.check(self._current_time())
        if limit is not None:
            self._end(limit)
            return True
        return False

    def _end(self, outcome: Outcome) -> None:
        self._status_pending = None
        result = self.runner.finish(self._current_time(), outcome)
        if self.bags_dir:  # the recorder names each bag after the episode it holds
            result.bag = str(Path(self.bags_dir) / f"episode_{result.index:03d}")
        self.run.episodes.append(result)
        self.marker_pub.publish(String(data=f"{bag_format.EPISODE_END} {outcome.value} episode={result.index}"))
        self._steps = [lambda: self.policy_enable.call_async(SetBool.Request(data=False))]
        self.run.save(self.output_dir)
        self.get_logger().info(f"episode {result.index}: {outcome.value} after {result.duration_s:.1f} s "
                               f"({self.run.successes}/{len(self.run.episodes)} so far)")

    def _finish(self) -> None:
        self.finished = True
        self.run.save(self.output_dir)
        summary = self.run.summary()
        self.get_logger().info(f"evaluation done: {summary['successes']}/{summary['episodes']} successes; "
                               f"{self.output_dir / 'results.md'}")


USER_ERRORS = (ValueError, GraphIncomplete)


def main(args=None) -> int:
    return run_node(EvalManager, "so101_eval_manager", USER_ERRORS, args, until=lambda node: node.finished)


if __name__ == "__main__":
    sys.exit(main())
