"""The generated protocol modules, imported in one place.

They are generated when the package is built (see setup.py); importing the
package from a source checkout without building it fails here with a hint.
"""

try:
    from ._proto.prism.keyvalue.v1 import keyvalue_pb2, keyvalue_pb2_grpc
    from ._proto.prism.pubsub.v1 import pubsub_pb2, pubsub_pb2_grpc
    from ._proto.prism.registry.v1 import registry_pb2, registry_pb2_grpc
except ImportError as error:  # pragma: no cover - depends on how it was installed
    raise ImportError(
        "prism_client's gRPC stubs are missing: install the package "
        "(`pip install ./clients/python`) instead of importing it from the source tree"
    ) from error

__all__ = [
    "keyvalue_pb2",
    "keyvalue_pb2_grpc",
    "pubsub_pb2",
    "pubsub_pb2_grpc",
    "registry_pb2",
    "registry_pb2_grpc",
]
