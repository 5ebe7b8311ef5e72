"""Per-object state beyond plain variables, in Keras's ``.keras`` layout.

Keras lets a layer write its own entries into its weights-file group
(``save_own_variables(store)``: e.g. a lookup layer's ``vars/idf_weights``) and files
into ``assets/<inner path>/`` of the archive (``save_assets(dir_path)``: e.g.
``vocabulary.txt``). Lamina layers that define these methods are saved and loaded the
same way, so archives move between Keras and Lamina.

Reading assets is defensive: only plain file names directly under the object's folder
are extracted, each under a size cap, into a private temporary folder.
"""

from __future__ import annotations

import os
import tempfile
import zipfile

ASSETS_DIR = "assets"
_MAX_ASSET_BYTES = 256 * 2**20


def has_own_store(obj) -> bool:
    """Whether ``obj`` (a layer, not an optimizer) writes its own weights-file entries."""
    from lamina.optimizers.base import Optimizer

    return not isinstance(obj, Optimizer) and callable(getattr(obj, "save_own_variables", None))


class ReadOnlyStore:
    """A weights-file group as a mapping whose reads go through ``h5_store.safe_read``."""

    def __init__(self, group):
        self._group = group

    def __contains__(self, key) -> bool:
        return self._group is not None and key in self._group

    def __len__(self) -> int:
        return 0 if self._group is None else len(self._group)

    def __getitem__(self, key):
        from lamina.saving.h5_store import safe_read

        if key not in self:
            raise KeyError(key)
        return safe_read(self._group, key)

    def keys(self):
        return [] if self._group is None else list(self._group.keys())


def write_assets(model, archive: zipfile.ZipFile) -> None:
    """Add every object's ``save_assets`` files to ``archive`` under ``assets/<path>/``."""
    from lamina.saving.h5_store import walk

    for path, obj in walk(model, include_optimizer=False):
        if not callable(getattr(obj, "save_assets", None)):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            obj.save_assets(tmp)
            for name in sorted(os.listdir(tmp)):
                full = os.path.join(tmp, name)
                if os.path.isfile(full):
                    archive.write(full, f"{ASSETS_DIR}/{path}/{name}" if path
                                  else f"{ASSETS_DIR}/{name}")


def read_assets(model, filepath) -> None:
    """Call ``load_assets`` of every object that has it with its extracted asset folder.

    Raises:
        ValueError: for an asset over the size cap.
    """
    from lamina.saving.h5_store import walk

    targets = [(p, o) for p, o in walk(model, include_optimizer=False)
               if callable(getattr(o, "load_assets", None))]
    if not targets:
        return
    cap = _MAX_ASSET_BYTES
    with zipfile.ZipFile(filepath, "r") as archive:
        names = archive.namelist()
        for path, obj in targets:
            prefix = f"{ASSETS_DIR}/{path}/" if path else f"{ASSETS_DIR}/"
            with tempfile.TemporaryDirectory() as tmp:
                for member in names:
                    rest = member[len(prefix):] if member.startswith(prefix) else ""
                    if not rest or "/" in rest or "\\" in rest or rest in (".", ".."):
                        continue
                    info = archive.getinfo(member)
                    if info.file_size > cap:
                        raise ValueError(f"Refusing asset {member!r} in {filepath!r}: it "
                                         f"expands to {info.file_size} bytes (cap {cap}).")
                    with archive.open(info) as src, open(os.path.join(tmp, rest), "wb") as dst:
                        dst.write(src.read(cap + 1)[:cap])
                obj.load_assets(tmp)
