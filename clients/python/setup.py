"""Builds `prism-client` with its gRPC stubs generated from `proto/`.

The stubs are never checked in: `build_py` runs `grpc_tools.protoc` over the
repository's `proto/proto` (or, inside an sdist, the copy `sdist` put beside
this file) into `prism_client/_proto`, so the client always matches the
protocol it was built from. The generated modules import each other as
`prism.…`; they are rewritten to `prism_client._proto.prism.…` so that the
client owns no top-level `prism` package.
"""

import re
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

HERE = Path(__file__).parent.resolve()
# In a checkout: <repo>/clients/python -> <repo>/proto/proto. In an sdist: ./proto.
CANDIDATES = (HERE / "proto", HERE.parent.parent / "proto" / "proto")
IMPORT = re.compile(r"^(from|import) prism\.", re.MULTILINE)


def proto_root() -> Path:
    for candidate in CANDIDATES:
        if (candidate / "prism").is_dir():
            return candidate
    raise RuntimeError(
        "no .proto files: looked in " + ", ".join(str(c) for c in CANDIDATES)
    )


def generate(out: Path) -> None:
    import grpc_tools
    from grpc_tools import protoc

    root = proto_root()
    protos = sorted(str(p.relative_to(root)) for p in root.rglob("*.proto"))
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    code = protoc.main(
        [
            "grpc_tools.protoc",
            f"-I{root}",
            f"-I{well_known}",
            f"--python_out={out}",
            f"--pyi_out={out}",
            f"--grpc_python_out={out}",
            *protos,
        ]
    )
    if code != 0:
        raise RuntimeError(f"protoc failed ({code}) on {protos}")
    for folder in [out, *(p for p in out.rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    for module in [*out.rglob("*.py"), *out.rglob("*.pyi")]:
        text = module.read_text()
        module.write_text(IMPORT.sub(r"\1 prism_client._proto.prism.", text))


class BuildPy(build_py):
    def run(self) -> None:
        super().run()
        generate(Path(self.build_lib) / "prism_client" / "_proto")


class Sdist(sdist):
    def make_release_tree(self, base_dir, files):  # type: ignore[no-untyped-def]
        super().make_release_tree(base_dir, files)
        shutil.copytree(proto_root(), Path(base_dir) / "proto")


setup(cmdclass={"build_py": BuildPy, "sdist": Sdist})
