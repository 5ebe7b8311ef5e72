"""``get_file``: download a file into Keras's cache (``~/.keras/datasets``), check its
hash, and optionally extract it.

The layout is Keras's, so a file Keras already downloaded is found here too and the
other way round: ``$KERAS_HOME`` (or ``~/.keras``, or ``/tmp/.keras`` when that is not
writable) ``/<cache_subdir>/<fname>``. A download goes to ``<target>.part`` first and is
renamed only once complete and, when a hash is given, verified; an interrupted download
is resumed with an HTTP ``Range`` request when the server allows it. Archives are
checked member by member before anything is written: a member that would land outside
the extraction directory (``../``, an absolute path, a link pointing out, a device
file) makes extraction refuse with ``ValueError``.
"""

from __future__ import annotations

import hashlib
import os
import stat
import sys
import tempfile
import warnings
import zipfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import tarfile

_CHUNK = 1 << 16


def keras_home() -> str:
    """Keras's base directory: ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when
    the home directory is not writable).

    Keras reads the variable once, when it is imported; Lamina reads it at each call.
    """
    if "KERAS_HOME" in os.environ:
        return os.environ["KERAS_HOME"]
    base = os.path.expanduser("~")
    if not os.access(base, os.W_OK):
        base = "/tmp"
    return os.path.join(base, ".keras")


def _print_msg(message: str) -> None:
    from lamina.config import is_interactive_logging_enabled

    if is_interactive_logging_enabled():
        sys.stdout.write(message + "\n")
        sys.stdout.flush()
    else:
        import logging

        logging.getLogger("lamina").info(message)


def _writable_dir(path: str) -> bool:
    try:
        os.makedirs(path, exist_ok=True)
    except OSError:
        return False
    return os.access(path, os.W_OK)


def resolve_hasher(algorithm, file_hash=None):
    """The ``hashlib`` object for ``algorithm`` (``"sha256"``, ``"md5"`` or ``"auto"``:
    sha256 for a 64-character ``file_hash``, else md5, as Keras)."""
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "auto" and file_hash is not None and len(file_hash) == 64:
        return hashlib.sha256()
    if algorithm in ("md5", "auto"):
        return hashlib.md5()  # noqa: S324 - Keras's legacy integrity check, not security
    raise ValueError("hash_algorithm must be one of 'auto', 'sha256', 'md5'. "
                     f"Received: hash_algorithm={algorithm!r}")


def hash_file(fpath, algorithm="sha256", chunk_size=65535):
    """The hex digest of the file at ``fpath``.

    Args:
        fpath: path of the file.
        algorithm: ``"sha256"``, ``"md5"``, ``"auto"`` (sha256) or a ``hashlib`` object.
        chunk_size: bytes read at a time.

    Returns:
        The hash as a lowercase hex string.
    """
    hasher = resolve_hasher(algorithm) if isinstance(algorithm, str) else algorithm
    with open(fpath, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def validate_file(fpath, file_hash, algorithm="auto", chunk_size=65535):
    """Whether the file at ``fpath`` has the hash ``file_hash`` (sha256 or md5).

    Args:
        fpath: path of the file.
        file_hash: the expected hex digest.
        algorithm: ``"auto"`` (by the digest's length), ``"sha256"`` or ``"md5"``.
        chunk_size: bytes read at a time.

    Returns:
        True if the digests are equal.
    """
    hasher = resolve_hasher(algorithm, file_hash)
    return hash_file(fpath, hasher, chunk_size) == str(file_hash).lower()


def _inside(base: str, path: str) -> bool:
    try:
        return os.path.commonpath([base, path]) == base
    except ValueError:  # different drives
        return False


def _check_member(base: str, name: str, link: str | None = None, hard: bool = False) -> None:
    """Raise unless ``name`` (and the target ``link`` of a link member) stays in ``base``."""
    if os.path.isabs(name) or name.startswith(("/", "\\")):
        raise ValueError(f"Refusing to extract an archive member with an absolute path: "
                         f"Received: member={name!r}")
    dest = os.path.realpath(os.path.join(base, name))
    if not _inside(base, dest):
        raise ValueError(f"Refusing to extract an archive member outside {base!r}. "
                         f"Received: member={name!r}")
    if link is not None:
        # Hard links are relative to the archive root, symlinks to their own directory.
        origin = base if hard else os.path.dirname(dest)
        target = os.path.realpath(os.path.join(origin, link))
        if os.path.isabs(link) or not _inside(base, target):
            raise ValueError(f"Refusing to extract a link pointing outside {base!r}. "
                             f"Received: member={name!r} -> {link!r}")


def _check_tar(archive: tarfile.TarFile, base: str) -> list:
    members = archive.getmembers()
    for m in members:
        if m.isdev() or not (m.isfile() or m.isdir() or m.issym() or m.islnk()):
            raise ValueError(f"Refusing to extract a device or special file. "
                             f"Received: member={m.name!r}")
        link = m.linkname if (m.issym() or m.islnk()) else None
        _check_member(base, m.name, link, hard=m.islnk())
    return members


def _check_zip(archive: zipfile.ZipFile, base: str) -> list:
    members = archive.infolist()
    for info in members:
        link = None
        if stat.S_ISLNK(info.external_attr >> 16):
            # zipfile writes such a member as a plain file, but a symlink that points out
            # is the archive trying something: refuse it like tar's.
            link = archive.read(info).decode("utf-8", "replace")
        _check_member(base, info.filename, link)
    return members


def extract_archive(file_path, path=".", archive_format="auto"):
    """Extract a tar (``.tar``, ``.tar.gz``, ``.tar.bz2``) or zip archive into ``path``.

    Every member is checked before anything is written; an archive with a member that
    would escape ``path`` is refused whole.

    Args:
        file_path: the archive.
        path: the directory to extract into (created if missing).
        archive_format: ``"auto"`` (``["tar", "zip"]``), ``"tar"``, ``"zip"``, a list of
            these, or None (no extraction).

    Returns:
        True if the file was one of the formats and was extracted, else False.

    Raises:
        ValueError: if a member would be written outside ``path``.
        NotImplementedError: for an unknown ``archive_format``.
    """
    if archive_format is None:
        return False
    if archive_format == "auto":
        archive_format = ["tar", "zip"]
    if isinstance(archive_format, str):
        archive_format = [archive_format]
    file_path, path = os.fspath(file_path), os.fspath(path)
    for kind in archive_format:
        if kind not in ("tar", "zip"):
            raise NotImplementedError(f"archive_format must be 'tar' or 'zip'. "
                                      f"Received: archive_format={kind!r}")
        import tarfile  # here, not at import: 0.4 MB that most processes never use

        if kind == "tar" and tarfile.is_tarfile(file_path):
            with tarfile.open(file_path) as archive:
                os.makedirs(path, exist_ok=True)
                base = os.path.realpath(path)
                members = _check_tar(archive, base)
                kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                archive.extractall(path, members=members, **kwargs)  # noqa: S202 - checked
            return True
        if kind == "zip" and zipfile.is_zipfile(file_path):
            with zipfile.ZipFile(file_path) as archive:
                os.makedirs(path, exist_ok=True)
                base = os.path.realpath(path)
                archive.extractall(path, members=_check_zip(archive, base))
            return True
    return False


class _DownloadProgress:
    def __init__(self, total, done):
        from lamina.utils.progbar import Progbar

        self.bar = Progbar(total, unit_name="byte") if total else Progbar(None,
                                                                           unit_name="byte")
        self.done = done

    def add(self, n):
        self.done += n
        self.bar.update(self.done, finalize=False)

    def finish(self):
        self.bar.update(self.done, finalize=True)


def _download(origin: str, part: str, timeout: float = 60.0) -> None:
    """Fetch ``origin`` into ``part``, continuing an existing partial file if possible."""
    import urllib.error
    import urllib.request
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(origin)
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:
            # The partial file is at least as long as the resource: start again.
            os.remove(part)
            return _download(origin, part, timeout)
        raise
    with response:
        status = getattr(response, "status", 200)
        content_range = response.headers.get("Content-Range", "")
        resumed = have and status == 206 and content_range.startswith(f"bytes {have}-")
        if not resumed:
            have = 0
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        progress = _DownloadProgress(total, have)
        with open(part, "ab" if resumed else "wb") as out:
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                progress.add(len(chunk))
            out.flush()
            os.fsync(out.fileno())
        progress.finish()
    if total is not None and os.path.getsize(part) != total:
        raise OSError(f"connection closed after {os.path.getsize(part)} of {total} bytes")


def get_file(fname=None, origin=None, untar=False, md5_hash=None, file_hash=None,
             cache_subdir="datasets", hash_algorithm="auto", extract=False,
             archive_format="auto", cache_dir=None, force_download=False):
    """Download a file from a URL unless it is already in the cache (``keras.utils.get_file``).

    The file lands in ``<cache_dir>/<cache_subdir>/<fname>``, by default
    ``~/.keras/datasets/<fname>``. A cached file with the wrong hash is downloaded
    again; a downloaded file with the wrong hash is deleted and the call raises.

    Args:
        fname: the local file name; None takes the last part of ``origin``'s path. With
            ``extract``, a name without extension names the extraction directory.
        origin: the URL of the file (``http``, ``https``, ``file``).
        untar: deprecated, as ``extract=True, archive_format="tar"``.
        md5_hash: deprecated, as ``file_hash=md5_hash, hash_algorithm="md5"``.
        file_hash: the expected sha256 or md5 hex digest of the file.
        cache_subdir: directory under ``cache_dir``; an absolute path is used as is.
        hash_algorithm: ``"auto"`` (sha256 for 64 hex digits, else md5), ``"sha256"``
            or ``"md5"``.
        extract: extract the archive (tar, tar.gz, tar.bz2, zip) and return the
            extraction directory.
        archive_format: ``"auto"``, ``"tar"``, ``"zip"``, a list, or None.
        cache_dir: the base cache directory; None means ``$KERAS_HOME`` or ``~/.keras``
            (``/tmp/.keras`` when not writable). A missing directory is created (Keras
            instead falls back to ``/tmp/.keras`` for a directory that does not exist yet).
        force_download: download even if the file is in the cache.

    Returns:
        The path of the downloaded file, or of the extraction directory.

    Raises:
        ValueError: without ``origin``; for a ``fname`` holding a directory; when the
            downloaded file's hash does not match (the file is removed); for an archive
            member that would escape the extraction directory.
        OSError: when the download fails (the message names the URL and the cache path;
            the partial file is kept and the next call resumes it).
    """
    import urllib.error
    import urllib.parse
    if origin is None:
        raise ValueError('Please specify the "origin" argument (URL of the file to '
                         "download). Received: origin=None")
    if cache_dir is None:
        cache_dir = keras_home()
    if md5_hash is not None and file_hash is None:
        file_hash, hash_algorithm = md5_hash, "md5"
    resolve_hasher(hash_algorithm, file_hash)  # validates hash_algorithm early
    base = os.path.expanduser(os.fspath(cache_dir))
    if not _writable_dir(base):
        base = os.path.join("/tmp" if os.path.isdir("/tmp") else tempfile.gettempdir(),
                            ".keras")
    datadir = os.path.join(base, os.fspath(cache_subdir))
    os.makedirs(datadir, exist_ok=True)

    provided = fname
    fname = os.fspath(fname) if fname is not None else None
    if not fname:
        fname = os.path.basename(urllib.parse.urlsplit(origin).path)
        if not fname:
            raise ValueError(f"Can't parse the file name from the origin provided: "
                             f"'{origin}'. Please specify the `fname` argument.")
    elif os.sep in fname or (os.altsep and os.altsep in fname):
        raise ValueError("Paths are no longer accepted as the `fname` argument. To specify "
                         "the file's parent directory, use the `cache_dir` argument. "
                         f"Received: fname={fname}")

    if extract or untar:
        if provided and "." in fname:
            target = os.path.join(datadir, fname)
            extraction_dir = os.path.join(datadir, f"{fname[:fname.find('.')]}_extracted")
        else:
            extraction_dir = os.path.join(datadir, fname)
            target = os.path.join(datadir, f"{fname}_archive")
    else:
        target = os.path.join(datadir, fname)

    download = force_download or not os.path.exists(target)
    if not download and file_hash is not None and not validate_file(target, file_hash,
                                                                    hash_algorithm):
        _print_msg("A local file was found, but it seems to be incomplete or outdated "
                   f"because the {hash_algorithm} file hash does not match the original "
                   f"value of {file_hash} so we will re-download the data.")
        download = True

    if download:
        _print_msg(f"Downloading data from {origin}")
        part = target + ".part"
        try:
            _download(origin, part)
        except (urllib.error.URLError, OSError, ValueError) as e:
            reason = getattr(e, "reason", None) or e
            code = getattr(e, "code", None)
            detail = f"{code} -- {reason}" if code is not None else str(reason)
            raise OSError(f"URL fetch failure on {origin}: {detail} (downloading to "
                          f"{target}; the partial file {part} is resumed on the next "
                          "call)") from e
        if file_hash is not None and not validate_file(part, file_hash, hash_algorithm):
            os.remove(part)
            raise ValueError(f"Incomplete or corrupted file detected. The {hash_algorithm} "
                             f"file hash does not match the provided value of {file_hash}. "
                             f"Received: origin={origin!r} (the download was removed)")
        os.replace(part, target)

    if extract or untar:
        if untar:
            archive_format = "tar"
        if not extract_archive(target, extraction_dir, archive_format):
            warnings.warn("Could not extract archive.", stacklevel=2)
        return extraction_dir
    return target
