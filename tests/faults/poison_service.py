"""A service, run as its own process by tests/faults, whose handler kills
the process in the middle of one particular event, as a crashing native
library or the kernel's OOM killer would: no exception, no ack."""
import os
import signal

from common.handlers import consumes
from common.service import ClinicService
from services.sessions.events import SessionCompleted


class PoisonProbe(ClinicService):
    name = "poison_probe"

    @consumes(SessionCompleted)
    def on_session_completed(self, uow, event):
        if event.data.session_id.startswith("poison"):
            os.kill(os.getpid(), signal.SIGKILL)
        with open(os.environ["POISON_PROBE_APPLIED"], "a") as applied:
            applied.write(event.event_id + "\n")
