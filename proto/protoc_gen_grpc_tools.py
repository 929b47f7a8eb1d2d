"""A buf local plugin that runs one of grpcio-tools' built-in generators.

    buf.gen.yaml:  local: [.venv/bin/python, proto/protoc_gen_grpc_tools.py, GENERATOR]

GENERATOR is ``python``, ``pyi`` or ``grpc_python``. buf has no built-in ``grpc_python``
and grpcio-tools ships no ``protoc-gen-grpc_python`` binary, only a protoc with the
generator compiled in (``python -m grpc_tools.protoc``), and buf.build's remote plugins
need the network. So this reads buf's CodeGeneratorRequest, hands its descriptors to that
protoc as ``--descriptor_set_in`` and returns what it wrote.

buf's compiler sets every field's ``json_name``; protoc sets it only when a .proto spells
it out, and ``pacache_pb2.py`` embeds the descriptor. Default json_names are cleared first
so the output is byte-identical to ``grpc_tools.protoc -Iproto …`` on the sources.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import descriptor_pb2
from google.protobuf.compiler import plugin_pb2
from grpc_tools import protoc


def default_json_name(name: str) -> str:
    """protoc's ToJsonName: drop each '_' and upper-case the letter after it."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def clear_default_json_names(fields: Iterable[descriptor_pb2.FieldDescriptorProto]) -> None:
    for field in fields:
        if field.json_name == default_json_name(field.name):
            field.ClearField("json_name")


def clear_message(message: descriptor_pb2.DescriptorProto) -> None:
    clear_default_json_names([*message.field, *message.extension])
    for nested in message.nested_type:
        clear_message(nested)


def main() -> int:
    generator = sys.argv[1]
    request = plugin_pb2.CodeGeneratorRequest.FromString(sys.stdin.buffer.read())
    files = descriptor_pb2.FileDescriptorSet(file=request.proto_file)
    for file in files.file:
        clear_default_json_names(file.extension)
        for message in file.message_type:
            clear_message(message)
    response = plugin_pb2.CodeGeneratorResponse(
        supported_features=plugin_pb2.CodeGeneratorResponse.FEATURE_PROTO3_OPTIONAL
    )
    with tempfile.TemporaryDirectory(prefix="protoc-gen-grpc-tools-") as tmp:
        descriptors, out = Path(tmp) / "descriptors.binpb", Path(tmp) / "out"
        descriptors.write_bytes(files.SerializeToString())
        out.mkdir()
        option = f"{request.parameter}:" if request.parameter else ""
        code = protoc.main(
            [
                "protoc",
                f"--descriptor_set_in={descriptors}",
                f"--{generator}_out={option}{out}",
                *request.file_to_generate,
            ]
        )
        if code != 0:
            response.error = f"grpc_tools.protoc --{generator}_out exited with {code}"
        else:
            for path in sorted(p for p in out.rglob("*") if p.is_file()):
                response.file.add(name=str(path.relative_to(out)), content=path.read_text())
    sys.stdout.buffer.write(response.SerializeToString())
    return 0


if __name__ == "__main__":
    sys.exit(main())
