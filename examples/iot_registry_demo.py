#!/usr/bin/env python3
"""RFC-018's IoT scenario on Prism's multicast registry, over plain gRPC.

Three devices register with metadata and a TTL, each attaches a receiver
(its inbox), and an operator multicasts a command to "every sensor on
floor 1": exactly one device gets it, and the reply says so.

    cargo build --workspace
    ./target/debug/prism-proxy --config examples/registry.yaml &
    python3 examples/iot_registry_demo.py --target 127.0.0.1:8980

Needs `grpcio` and `grpcio-tools` (`pip install grpcio grpcio-tools`): the
stubs are generated from proto/ into a temporary folder at start. Exits 0
when every step behaved as described, 1 (naming the step) otherwise.
"""

import argparse
import json
import os
import queue
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROTO = "prism/registry/v1/registry.proto"


def load_stubs():
    """Generates the registry's Python stubs from proto/ and imports them."""
    from grpc_tools import protoc
    import grpc_tools

    out = tempfile.mkdtemp(prefix="prism-stubs-")
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    code = protoc.main([
        "protoc",
        f"-I{os.path.join(ROOT, 'proto', 'proto')}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        PROTO,
    ])
    if code != 0:
        sys.exit(f"generating stubs from {PROTO} failed ({code})")
    sys.path.insert(0, out)
    from prism.registry.v1 import registry_pb2, registry_pb2_grpc
    return registry_pb2, registry_pb2_grpc


pb, pb_grpc = load_stubs()
import grpc  # noqa: E402  (after the stubs, which need it too)
from google.protobuf import json_format, struct_pb2  # noqa: E402


def struct(value):
    s = struct_pb2.Struct()
    s.update(value)
    return s


class Fleet:
    """A registry namespace seen through one gRPC channel."""

    def __init__(self, target, namespace):
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.MulticastRegistryStub(self.channel)
        self.meta = [("x-prism-namespace", namespace)]
        self.calls = []

    def register(self, identity, metadata, ttl_seconds=60):
        return self.stub.Register(
            pb.RegisterRequest(identity=identity, metadata=struct(metadata), ttl_seconds=ttl_seconds),
            metadata=self.meta, timeout=10)

    def unregister(self, identity):
        return self.stub.Unregister(pb.UnregisterRequest(identity=identity), metadata=self.meta, timeout=10)

    def enumerate(self, filter_):
        reply = self.stub.Enumerate(
            pb.EnumerateRequest(filter=struct(filter_), include_metadata=True), metadata=self.meta, timeout=10)
        return {i.identity: json_format.MessageToDict(i.metadata) for i in reply.identities}

    def multicast(self, filter_, message):
        return self.stub.Multicast(
            pb.MulticastRequest(filter=struct(filter_), payload=json.dumps(message).encode(), timeout_ms=5000),
            metadata=self.meta, timeout=10)

    def receive(self, identity, inbox):
        """Attaches a receiver for `identity`; what arrives goes to `inbox`."""
        call = self.stub.Receive(pb.ReceiveRequest(identity=identity), metadata=self.meta)
        self.calls.append(call)

        def pump():
            try:
                for message in call:
                    inbox.put((identity, json.loads(message.payload), message.multicast_id))
            except grpc.RpcError as err:
                if err.code() != grpc.StatusCode.CANCELLED:
                    inbox.put((identity, {"error": str(err.code())}, ""))

        threading.Thread(target=pump, daemon=True).start()

    def close(self):
        for call in self.calls:
            call.cancel()
        self.channel.close()


def step(ok, what):
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="127.0.0.1:8980", help="the proxy's data address")
    parser.add_argument("--namespace", default="devices", help="a multicast-registry namespace")
    args = parser.parse_args()

    fleet = Fleet(args.target, args.namespace)
    devices = {
        "sensor-1": {"type": "sensor", "floor": 1},
        "sensor-2": {"type": "sensor", "floor": 2},
        "actuator-1": {"type": "actuator", "floor": 1},
    }
    for identity, metadata in devices.items():
        reply = fleet.register(identity, metadata, ttl_seconds=60)
        print(f"registered {identity} {metadata} (new: {reply.created})")

    sensors = fleet.enumerate({"type": "sensor"})
    step(sorted(sensors) == ["sensor-1", "sensor-2"], f"enumerate {{type: sensor}} -> {sorted(sensors)}")
    step(sensors["sensor-2"] == {"type": "sensor", "floor": 2.0}, "metadata comes back as registered")

    inbox = queue.Queue()
    for identity in devices:
        fleet.receive(identity, inbox)

    # Receivers attach asynchronously: send until sensor-1's is there.
    deadline = time.monotonic() + 15
    while True:
        result = fleet.multicast({"type": "sensor", "floor": 1}, {"command": "read"})
        if result.delivered_count == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    print(f"multicast {{type: sensor, floor: 1}} -> target {result.target_count}, "
          f"delivered {result.delivered_count}, pending {result.pending_count}, failed {result.failed_count}")
    step(result.target_count == 1, "only one device is a sensor on floor 1")
    step(result.delivered_count == 1, "and it got the command")
    step([r.identity for r in result.results] == ["sensor-1"], "that device is sensor-1")

    who, payload, multicast_id = inbox.get(timeout=10)
    step(who == "sensor-1" and payload == {"command": "read"}, f"{who} received {payload}")
    # Earlier sends of the same command (before every receiver attached) may
    # still arrive at sensor-1; nothing may arrive anywhere else.
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        try:
            who, payload, _ = inbox.get(timeout=max(0.0, end - time.monotonic()))
        except queue.Empty:
            break
        step(who == "sensor-1", f"a repeated send reached {who} only ({payload})")

    everyone_on_floor_1 = fleet.multicast({"floor": 1}, {"command": "lights-off"})
    step((everyone_on_floor_1.target_count, everyone_on_floor_1.delivered_count) == (2, 2),
         "floor 1: sensor-1 and actuator-1 both get lights-off")
    got = set()
    while len(got) < 2:
        who, payload, _ = inbox.get(timeout=10)
        if payload == {"command": "lights-off"}:
            got.add(who)
    step(got == {"sensor-1", "actuator-1"}, f"received by {sorted(got)}")

    heartbeat = fleet.register("sensor-2", {"type": "sensor", "floor": 2, "battery": 71})
    step(not heartbeat.created, "registering again is the heartbeat (not a new identity)")
    step(fleet.unregister("actuator-1").existed, "actuator-1 leaves the fleet")
    step(not fleet.unregister("actuator-1").existed, "leaving twice is harmless")
    nobody = fleet.multicast({"type": "actuator"}, {"command": "noop"})
    step((nobody.target_count, nobody.delivered_count) == (0, 0), "no actuator left: 0 targets, no error")

    fleet.close()
    print("IoT scenario passed")


if __name__ == "__main__":
    main()
