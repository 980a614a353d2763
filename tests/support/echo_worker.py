#!/usr/bin/python3
"""An independent request-reply worker for the integration tests (python3-zmq, its own process).

usage: echo_worker.py PORT NAME [DELAY_MS]

A DEALER bound on 127.0.0.1:PORT. Each request is [envelope..., b"", body, more...]; the reply
echoes the envelope up to and including the empty frame, then b"NAME:" + body and the other
frames. With DELAY_MS each reply waits that long (a slow host). Prints "ready" once bound.
The tests stop it with SIGSTOP/SIGCONT (a host that stops answering without closing) and
SIGKILL.
"""
import sys
import time

import zmq

port, name = int(sys.argv[1]), sys.argv[2].encode()
delay = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0

context = zmq.Context()
socket = context.socket(zmq.DEALER)
socket.linger = 0
socket.sndhwm = 0  # never drop or block a reply on our side
socket.rcvhwm = 0
for attempt in range(100):  # the port may still be held by a worker that just died
    try:
        socket.bind(f"tcp://127.0.0.1:{port}")
        break
    except zmq.ZMQError:
        time.sleep(0.05)
else:
    sys.exit(f"cannot bind {port}")
print("ready", flush=True)
while True:
    frames = socket.recv_multipart()
    try:
        body = frames.index(b"") + 1
    except ValueError:
        continue
    if body >= len(frames):
        continue
    if delay:
        time.sleep(delay)
    socket.send_multipart(frames[:body] + [name + b":" + frames[body]] + frames[body + 1:])
