"""An SDS process for the crash tests: opens the ledger in HOME, talks to the
fleet relay over stdin/stdout, and SIGKILLs itself after its N-th committed
step (N = 0: never). Mode "migrate" orders then settles; "recover" settles."""

import os
import signal
import sys

import librewire as rewire

home, mode, crash_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
count = 0


def on_step(name: str) -> None:
    global count
    count += 1
    sys.stderr.write(f"step {count}: {name}\n")
    sys.stderr.flush()
    if count == crash_at:
        os.kill(os.getpid(), signal.SIGKILL)


key = rewire.SigningKey.load(os.path.join(home, "sds.pem"))
led = rewire.Ledger(os.path.join(home, "ledger.sqlite"), key, on_step=on_step)
t = rewire.StreamTransport(sys.stdin.buffer, sys.stdout.buffer)
orch = rewire.Orchestrator(led, t, on_step=on_step)
if mode == "migrate":
    eid = led.enclave_id("app")
    try:
        orch.migrate(eid, led.host_id("target"))
    except rewire.MigrationAborted:
        pass
else:
    orch.settle()
sys.stderr.write(f"STEPS {count}\n")
