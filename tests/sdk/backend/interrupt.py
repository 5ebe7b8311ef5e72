"""Press Ctrl-C in a `fit` running in a child process (the thread-pool tests)."""

import signal
import subprocess
import sys
import textwrap
import time

SCRIPT = """
import sys
import numpy as np
import lamina
model = lamina.Sequential([lamina.Input({input_shape}), {layers}])
model.compile("adam", "mse")
x, y = np.ones(({n}, *{input_shape}), np.float32), np.zeros(({n}, 10), np.float32)
print("ready", flush=True)
try:
    model.fit(x, y, epochs=1000, verbose=0)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    sys.exit(3)
"""


def interrupt_fit(input_shape: tuple, layers: str, n: int) -> tuple[int, str]:
    """Start ``fit`` of ``Sequential([Input(input_shape), layers])`` on ``n`` samples in
    a child, send SIGINT after a second of training; its exit code and output (3 and
    "interrupted" when ``fit`` raised KeyboardInterrupt)."""
    script = textwrap.dedent(SCRIPT).format(input_shape=tuple(input_shape), layers=layers,
                                            n=n)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    return proc.returncode, out
