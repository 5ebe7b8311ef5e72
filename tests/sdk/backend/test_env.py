"""lamina.backend.env: the readers of the LAMINA_* switches, and that every switch the SDK
reads goes through them (its real owner reads each spelling the parser's way)."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

from lamina.backend import aot, blas_threads, compiled, env, memory, threads
from lamina.distribute import DataParallel, pinning, shm

ON = ["1", "true", "on", "yes", "TRUE", " On ", "Yes\n"]
OFF = ["0", "false", "off", "no", "FALSE", " Off ", "nO"]
BLANK = [None, "", "  "]  # None: unset


def _set(monkeypatch, name, value):
    if value is None:
        monkeypatch.delenv(name, raising=False)
    else:
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("value", ON)
def test_flag_on_spellings(monkeypatch, value):
    monkeypatch.setenv("LAMINA_TEST_SWITCH", value)
    assert env.flag("LAMINA_TEST_SWITCH", False) is True


@pytest.mark.parametrize("value", OFF)
def test_flag_off_spellings(monkeypatch, value):
    monkeypatch.setenv("LAMINA_TEST_SWITCH", value)
    assert env.flag("LAMINA_TEST_SWITCH", True) is False


@pytest.mark.parametrize("value", BLANK)
@pytest.mark.parametrize("default", [True, False])
def test_flag_blank_or_unset_is_the_default(monkeypatch, value, default):
    _set(monkeypatch, "LAMINA_TEST_SWITCH", value)
    assert env.flag("LAMINA_TEST_SWITCH", default) is default


@pytest.mark.parametrize("value", ["2", "flase", "enabled", "y", "-1", "1.0"])
def test_flag_bad_value_names_the_variable_and_echoes_it(monkeypatch, value):
    monkeypatch.setenv("LAMINA_TEST_SWITCH", value)
    with pytest.raises(ValueError) as info:
        env.flag("LAMINA_TEST_SWITCH", True)
    message = str(info.value)
    assert f"Received: LAMINA_TEST_SWITCH={value!r}" in message
    assert all(word in message for word in env.TRUE + env.FALSE)
    assert "default (on)" in message


def test_choice_words_integers_blank_and_errors(monkeypatch):
    choices = ("auto", "off")
    for value, expected in (("auto", "auto"), (" OFF ", "off"), ("Auto", "auto"),
                            (None, "auto"), ("", "auto"), ("   ", "auto")):
        _set(monkeypatch, "LAMINA_TEST_CHOICE", value)
        assert env.choice("LAMINA_TEST_CHOICE", choices, "auto") == expected
    for value, expected in (("3", 3), (" 12 ", 12), ("01", 1)):
        monkeypatch.setenv("LAMINA_TEST_CHOICE", value)
        assert env.choice("LAMINA_TEST_CHOICE", choices, "auto", positive_int=True) == expected
    for value, positive_int in (("3", False), ("0", True), ("-2", True), ("1.5", True),
                                ("fast", True), ("on", False)):
        monkeypatch.setenv("LAMINA_TEST_CHOICE", value)
        with pytest.raises(ValueError, match=re.escape(
                f"must be one of auto, off{' or a positive integer' if positive_int else ''}."
                f" Received: LAMINA_TEST_CHOICE={value!r}")):
            env.choice("LAMINA_TEST_CHOICE", choices, "auto", positive_int=positive_int)


def test_number_values_blank_and_errors(monkeypatch):
    for value, expected in (("0.25", 0.25), (" 4 ", 4.0), ("1e-3", 0.001), ("0", 0.0),
                            (None, 7.0), ("", 7.0)):
        _set(monkeypatch, "LAMINA_TEST_NUMBER", value)
        result = env.number("LAMINA_TEST_NUMBER", 7, minimum=0)
        assert result == expected and type(result) is float
    for value in ("x", "nan", "inf", "-0.5", "1,5"):
        monkeypatch.setenv("LAMINA_TEST_NUMBER", value)
        with pytest.raises(ValueError, match=re.escape(
                f"LAMINA_TEST_NUMBER must be a finite number >= 0. "
                f"Received: LAMINA_TEST_NUMBER={value!r}")):
            env.number("LAMINA_TEST_NUMBER", 7, minimum=0)
    monkeypatch.setenv("LAMINA_TEST_NUMBER", "-0.5")
    assert env.number("LAMINA_TEST_NUMBER", 7) == -0.5


# Each switch as its owner reads it: a function from a fresh read to the setting in force.
@pytest.fixture
def collective(tmp_path):
    # Two ranks and enough floats for chunk balancing; rank 0's handle only.
    path = shm.create(tmp_path / "c", 2, 200_000, balance=False)
    handle = shm.SharedMemoryCollective(path, 0)
    yield handle
    handle.close()
    shm.remove(path)


def _balance(tmp_path):
    path = shm.create(tmp_path / "b", 2, 200_000)
    handle = shm.SharedMemoryCollective(path, 0)
    try:
        return handle.balance.enabled
    finally:
        handle.close()
        shm.remove(path)


def _keep_freed_memory(monkeypatch):
    monkeypatch.setattr(memory, "_done", False)
    return memory.keep_freed_memory()


FLAGS = {  # switch: (default, reader(collective, tmp_path, monkeypatch))
    "LAMINA_OVERLAP_UPDATE": (False, lambda c, t, m: DataParallel(c).overlap_update),
    "LAMINA_SHARED_UPDATE": (True, lambda c, t, m: DataParallel(c).shared_update),
    "LAMINA_GRADIENTS_IN_SLOT": (True, lambda c, t, m: DataParallel(
        c, bucket_cap_mb=0).gradients_in_slot),
    "LAMINA_BALANCE_CHUNKS": (True, lambda c, t, m: _balance(t)),
    "LAMINA_KEEP_FREED_MEMORY": (True, lambda c, t, m: _keep_freed_memory(m)),
    "LAMINA_POOL_SPIN": (True, lambda c, t, m: threads.spin_switch()),
    "LAMINA_AOT": (True, lambda c, t, m: aot.enabled()),
}


@pytest.mark.parametrize("name", sorted(FLAGS))
def test_every_boolean_switch_reads_through_the_parser(name, collective, tmp_path,
                                                       monkeypatch):
    default, read = FLAGS[name]
    if name == "LAMINA_KEEP_FREED_MEMORY" and not sys.platform.startswith("linux"):
        pytest.skip("malloc tuning applies on Linux only")
    for values, expected in ((["yes", " ON ", "True"], True), (["no", "Off", "FALSE"], False),
                             (BLANK, default)):
        for value in values:
            _set(monkeypatch, name, value)
            assert read(collective, tmp_path, monkeypatch) is expected, (name, value)
    monkeypatch.setenv(name, "maybe")
    with pytest.raises(ValueError, match=f"Received: {name}='maybe'"):
        read(collective, tmp_path, monkeypatch)


def test_kernels_switch_reads_through_the_parser(monkeypatch):
    for value, expected in ((" NumPy ", "numpy"), ("NUMBA", "numba"), ("", "auto")):
        monkeypatch.setattr(compiled, "_switch", env.Switch("LAMINA_KERNELS", compiled.CHOICES,
                                                            "auto"))
        monkeypatch.setenv("LAMINA_KERNELS", value)
        assert compiled.choice() == expected
    monkeypatch.setattr(compiled, "_switch", env.Switch("LAMINA_KERNELS", compiled.CHOICES,
                                                        "auto"))
    monkeypatch.setenv("LAMINA_KERNELS", "on")
    with pytest.raises(ValueError, match="one of auto, numpy, numba. Received: "
                                         "LAMINA_KERNELS='on'"):
        compiled.choice()


def test_threads_switch_reads_through_the_parser(monkeypatch):
    for value, expected in (("OFF", "off"), (" 3 ", 3), ("", "auto")):
        monkeypatch.setitem(blas_threads._state, "policy", None)
        monkeypatch.setenv("LAMINA_THREADS", value)
        assert blas_threads.get_thread_policy() == expected
    for value in ("0", "many", "on"):
        monkeypatch.setitem(blas_threads._state, "policy", None)
        monkeypatch.setenv("LAMINA_THREADS", value)
        with pytest.raises(ValueError, match=f"Received: LAMINA_THREADS='{value}'"):
            blas_threads.get_thread_policy()


def test_pin_replicas_switch_reads_through_the_parser(monkeypatch, collective):
    monkeypatch.setattr(pinning, "allowed_cpus", lambda: [4, 9])
    monkeypatch.setattr(pinning, "niced", lambda: True)
    for value, expected in ((" 1 ", 4), ("0", None), ("AUTO", 4), ("", 4)):
        monkeypatch.setenv("LAMINA_PIN_REPLICAS", value)
        assert pinning.replica_cpu(0, 2, collective) == expected
    monkeypatch.setenv("LAMINA_PIN_REPLICAS", "yes")  # a tri-state: auto, 0, 1 only
    with pytest.raises(ValueError, match="Received: LAMINA_PIN_REPLICAS='yes'"):
        pinning.replica_cpu(0, 2, collective)


def test_bucket_cap_switch_reads_through_the_parser(monkeypatch, collective):
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", " 0.5 ")
    assert DataParallel(collective).bucket_cap_mb == 0.5
    monkeypatch.delenv("LAMINA_BUCKET_CAP_MB")
    unset = DataParallel(collective).bucket_cap_mb
    monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", " ")
    assert DataParallel(collective).bucket_cap_mb == unset
    for value in ("big", "-1"):
        monkeypatch.setenv("LAMINA_BUCKET_CAP_MB", value)
        with pytest.raises(ValueError, match=f"Received: LAMINA_BUCKET_CAP_MB='{value}'"):
            DataParallel(collective)


def test_every_switch_the_sdk_reads_goes_through_the_parser_and_is_documented():
    """No LAMINA_* variable is read from os.environ directly (the client's URL and key
    are strings, not switches), and docs/architecture.md's table lists each switch."""
    root = Path(__file__).resolve().parents[3]
    read = set()
    for path in (root / "sdk" / "lamina").rglob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r"env\.(?:flag|choice|number|path|Switch)\(\s*\"(LAMINA_\w+)\"",
                               text))
        direct = set(re.findall(r"environ(?:\.get)?[(\[]\s*\"(LAMINA_\w+)\"", text))
        allowed = {"LAMINA_URL", "LAMINA_API_KEY"} if path.name == "client.py" else set()
        assert direct <= allowed, (path, direct - allowed)
    assert read >= set(FLAGS) | {"LAMINA_KERNELS", "LAMINA_THREADS", "LAMINA_PIN_REPLICAS",
                                 "LAMINA_BUCKET_CAP_MB"}
    docs = (root / "docs" / "architecture.md").read_text()
    table = docs[docs.index("### Environment switches"):]
    table = table[:table.index("\n#")]
    assert {name for name in read if f"`{name}`" not in table} == set()


def test_a_switch_reads_the_environment_once_and_may_be_overridden(monkeypatch):
    """``env.Switch`` (LAMINA_KERNELS, LAMINA_GEMM): the parser's word at the first
    read, kept; ``set`` overrides it (a word it does not take is named); ``use``
    restores the word in force before the block, also after an error in it."""
    monkeypatch.setenv("LAMINA_TEST_SWITCH", " B ")
    switch = env.Switch("LAMINA_TEST_SWITCH", ("a", "b"), "a")
    assert switch.get() == "b"
    monkeypatch.setenv("LAMINA_TEST_SWITCH", "a")
    assert switch.get() == "b"  # read once
    with pytest.raises(ValueError, match=r"`value` must be one of a, b\. "
                                         r"Received: value='c'"):
        switch.set("c")
    with pytest.raises(RuntimeError), switch.use("a"):
        assert switch.get() == "a"
        raise RuntimeError
    assert switch.get() == "b"
    switch.set("a")
    assert switch.get() == "a"
    monkeypatch.setenv("LAMINA_TEST_SWITCH", "nope")
    with pytest.raises(ValueError, match="Received: LAMINA_TEST_SWITCH='nope'"):
        env.Switch("LAMINA_TEST_SWITCH", ("a", "b"), "a").get()


def test_folder_switch_keeps_case_strips_and_expands_home(monkeypatch, tmp_path):
    monkeypatch.setenv("LAMINA_AOT_DIR", f"  {tmp_path}/Kernels ")
    assert aot.directory() == tmp_path / "Kernels"
    monkeypatch.setenv("LAMINA_AOT_DIR", "~/k")
    assert str(aot.directory()) == os.path.expanduser("~/k")
    for blank in ("", "   "):
        monkeypatch.setenv("LAMINA_AOT_DIR", blank)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        assert aot.directory() == tmp_path / "lamina" / "kernels"
