"""``lamina.utils.get_file``: Keras's cache layout, hashes, resumable downloads, safe
extraction, against a local HTTP server (the test machines have no internet)."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import zipfile

import pytest

from lamina.utils import file_utils
from lamina.utils.file_utils import extract_archive, get_file, hash_file, validate_file

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def _md5(data):
    return hashlib.md5(data).hexdigest()  # noqa: S324


def test_downloads_into_keras_home_and_uses_the_cache(http_server, keras_home, capsys):
    http_server.files["/data/payload.bin"] = PAYLOAD
    url = http_server.url("/data/payload.bin")
    path = get_file(origin=url, file_hash=_sha(PAYLOAD))
    assert path == str(keras_home / "datasets" / "payload.bin")
    assert open(path, "rb").read() == PAYLOAD
    out = capsys.readouterr().out
    assert f"Downloading data from {url}" in out
    # The Progbar's final line counts bytes.
    assert "102400/102400" in out and "/byte" in out
    assert not os.path.exists(path + ".part")
    # Cached: no second request, also with md5 and a custom subdir name.
    assert get_file("payload.bin", url, file_hash=_sha(PAYLOAD)) == path
    assert len(http_server.requests) == 1
    assert get_file("payload.bin", url, md5_hash=_md5(PAYLOAD)) == path
    assert len(http_server.requests) == 1
    get_file("payload.bin", url, force_download=True)
    assert len(http_server.requests) == 2
    other = get_file("p.bin", url, cache_subdir="models", cache_dir=keras_home / "alt")
    assert other == str(keras_home / "alt" / "models" / "p.bin")


def test_stale_cached_file_is_downloaded_again(http_server, keras_home):
    http_server.files["/x.bin"] = PAYLOAD
    target = keras_home / "datasets" / "x.bin"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"old")
    path = get_file(origin=http_server.url("/x.bin"), file_hash=_sha(PAYLOAD))
    assert open(path, "rb").read() == PAYLOAD


def test_hash_mismatch_raises_and_leaves_no_file(http_server, keras_home):
    http_server.files["/bad.bin"] = PAYLOAD
    for wrong in ("0" * 64, "0" * 32):
        with pytest.raises(ValueError, match="hash does not match"):
            get_file(origin=http_server.url("/bad.bin"), file_hash=wrong)
        assert os.listdir(keras_home / "datasets") == []


def test_hash_algorithm_auto_by_length(tmp_path):
    f = tmp_path / "f"
    f.write_bytes(PAYLOAD)
    assert hash_file(f) == _sha(PAYLOAD) and hash_file(f, "md5") == _md5(PAYLOAD)
    assert validate_file(f, _sha(PAYLOAD)) and validate_file(f, _md5(PAYLOAD))
    assert not validate_file(f, _md5(PAYLOAD), algorithm="sha256")
    with pytest.raises(ValueError, match="hash_algorithm='sha1'"):
        validate_file(f, _md5(PAYLOAD), algorithm="sha1")


def test_interrupted_download_resumes_with_range(http_server, keras_home):
    http_server.files["/big.bin"] = PAYLOAD
    http_server.cut_after["/big.bin"] = 30_000
    url = http_server.url("/big.bin")
    with pytest.raises(OSError, match="URL fetch failure on .*big.bin") as err:
        get_file(origin=url, file_hash=_sha(PAYLOAD))
    target = str(keras_home / "datasets" / "big.bin")
    assert target in str(err.value)
    assert os.path.getsize(target + ".part") == 30_000 and not os.path.exists(target)
    path = get_file(origin=url, file_hash=_sha(PAYLOAD))
    assert http_server.requests[-1] == ("/big.bin", "bytes=30000-")
    assert open(path, "rb").read() == PAYLOAD


def test_resume_restarts_when_server_ignores_range(http_server, keras_home):
    http_server.files["/big.bin"] = PAYLOAD
    http_server.range_support = False
    part = keras_home / "datasets" / "big.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"garbage" * 10)
    path = get_file(origin=http_server.url("/big.bin"), file_hash=_sha(PAYLOAD))
    assert http_server.requests[-1][1] == "bytes=70-"
    assert open(path, "rb").read() == PAYLOAD


def test_failure_names_url_and_cache_path(http_server, keras_home):
    url = http_server.url("/missing.npz")
    with pytest.raises(OSError) as err:
        get_file(origin=url)
    message = str(err.value)
    assert url in message and "404" in message
    assert str(keras_home / "datasets" / "missing.npz") in message


def test_argument_errors(keras_home):
    with pytest.raises(ValueError, match="origin=None"):
        get_file("a.bin")
    with pytest.raises(ValueError, match="fname=a/b.bin"):
        get_file("a/b.bin", "http://127.0.0.1:9/x")
    with pytest.raises(ValueError, match="file name from the origin"):
        get_file(origin="http://127.0.0.1:9/")


def test_unwritable_cache_dir_falls_back_to_tmp(http_server, tmp_path, monkeypatch):
    http_server.files["/fb.bin"] = b"abc"
    readonly = tmp_path / "ro"
    real = file_utils._writable_dir
    monkeypatch.setattr(file_utils, "_writable_dir",
                        lambda path: False if path == str(readonly) else real(path))
    subdir = f"lamina_test_fallback_{os.getpid()}_{tmp_path.name}"
    try:
        path = get_file(origin=http_server.url("/fb.bin"), cache_dir=readonly,
                        cache_subdir=subdir)
        assert path == os.path.join("/tmp", ".keras", subdir, "fb.bin")
        assert open(path, "rb").read() == b"abc"
    finally:
        shutil.rmtree(os.path.join("/tmp", ".keras", subdir), ignore_errors=True)


def test_keras_home_default(monkeypatch, tmp_path):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert file_utils.keras_home() == str(tmp_path / ".keras")
    monkeypatch.setenv("KERAS_HOME", "/some/where")
    assert file_utils.keras_home() == "/some/where"


def _tar_bytes(members, mode="w:gz"):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name, data=b"hello"):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name, target, kind=tarfile.SYMTYPE):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _zip_bytes(entries):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return buf.getvalue()


def test_extract_tar_gz_and_zip_layouts(http_server, keras_home):
    http_server.files["/flowers.tgz"] = _tar_bytes([_file("flowers/a.txt", b"A"),
                                                    _file("flowers/sub/b.txt", b"B")])
    out = get_file(origin=http_server.url("/flowers.tgz"), extract=True)
    # Keras: no fname -> <name> dir, archive kept as <name>_archive.
    assert out == str(keras_home / "datasets" / "flowers.tgz")
    assert (keras_home / "datasets" / "flowers.tgz_archive").is_file()
    assert open(os.path.join(out, "flowers", "sub", "b.txt"), "rb").read() == b"B"
    http_server.files["/d.zip"] = _zip_bytes([("d/x.txt", b"X")])
    out = get_file("d.zip", http_server.url("/d.zip"), extract=True)
    assert out == str(keras_home / "datasets" / "d_extracted")
    assert (keras_home / "datasets" / "d.zip").is_file()
    assert open(os.path.join(out, "d", "x.txt"), "rb").read() == b"X"
    out = get_file("plain", http_server.url("/flowers.tgz"), untar=True)
    assert out == str(keras_home / "datasets" / "plain")
    assert os.path.isfile(os.path.join(out, "flowers", "a.txt"))


@pytest.mark.parametrize("archive", [
    pytest.param(lambda: _zip_bytes([("ok.txt", b"ok"), ("../../evil.txt", b"x")]),
                 id="zip-slip"),
    pytest.param(lambda: _zip_bytes([("/abs/evil.txt", b"x")]), id="zip-absolute"),
    pytest.param(lambda: _tar_bytes([_file("ok.txt"), _file("../evil.txt")]), id="tar-slip"),
    pytest.param(lambda: _tar_bytes([_file("/tmp/evil.txt")]), id="tar-absolute"),
    pytest.param(lambda: _tar_bytes([_link("ln", "../../etc")]), id="tar-symlink-out"),
    pytest.param(lambda: _tar_bytes([_link("ln", "/etc/passwd")]), id="tar-symlink-abs"),
    pytest.param(lambda: _tar_bytes([_link("d/ln", "../../x", tarfile.LNKTYPE)]),
                 id="tar-hardlink-out"),
    pytest.param(lambda: _tar_bytes([_link("ln", "."), _file("ln/../../evil.txt")]),
                 id="tar-through-symlink"),
])
def test_extraction_refuses_members_escaping(tmp_path, archive):
    src = tmp_path / "archive.bin"
    src.write_bytes(archive())
    dest = tmp_path / "out" / "inner"
    with pytest.raises(ValueError, match="Refusing to extract"):
        extract_archive(src, dest)
    written = [os.path.join(r, f) for r, _, fs in os.walk(tmp_path / "out") for f in fs]
    assert written == []
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out" / "evil.txt").exists()


def test_zip_symlink_member_pointing_out_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("link")
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "../../outside")
    src = tmp_path / "a.zip"
    src.write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="link pointing outside"):
        extract_archive(src, tmp_path / "out")


def test_symlink_inside_archive_is_allowed(tmp_path):
    src = tmp_path / "ok.tar"
    src.write_bytes(_tar_bytes([_file("d/real.txt", b"R"), _link("d/alias.txt", "real.txt")],
                               mode="w"))
    assert extract_archive(src, tmp_path / "out", archive_format="tar")
    assert (tmp_path / "out" / "d" / "alias.txt").read_bytes() == b"R"
    assert not extract_archive(src, tmp_path / "out2", archive_format="zip")


def test_zip_slip_through_get_file_leaves_nothing_outside(http_server, keras_home):
    http_server.files["/slip.zip"] = _zip_bytes([("../../slip.txt", b"x")])
    with pytest.raises(ValueError, match="member='../../slip.txt'"):
        get_file(origin=http_server.url("/slip.zip"), extract=True)
    assert not (keras_home / "slip.txt").exists() and not (keras_home.parent /
                                                           "slip.txt").exists()
