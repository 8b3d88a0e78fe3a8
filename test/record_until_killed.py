"""A small recording process for the crash test: joint states at 1 kHz into an MCAP file until it is killed.

Prints ``queued N`` (flushed) every 50 messages, so the test knows what had been handed to the recorder when.
"""

import sys
import time

from snn_sac_ros.core.recording import messages
from snn_sac_ros.core.recording.writer import McapRecorder

recorder = McapRecorder(sys.argv[1], chunk_size=1024 * 1024, flush_seconds=0.1)
channel = recorder.channel("/joint_states", messages.TOPICS["/joint_states"])
start = time.monotonic()
for i in range(10**9):
    t = i * 0.001
    recorder.write(channel, messages.joint_state(t, ["shoulder", "elbow"], [i, 0.0], [0.0, 0.0], [0.0, 0.0]),
                   round(t * 1e9))
    if i % 50 == 0:
        print(f"queued {i}", flush=True)
    time.sleep(max(0.0, start + t + 0.001 - time.monotonic()))
