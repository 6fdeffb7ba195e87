"""Scores what a callee heard against the speech the caller sent: PESQ (ITU-T P.862.2, wideband).

    python score_audio.py SENT.wav HEARD.wav  ->  {"pesq": 3.9, "offset_s": 0.21, "seconds": 4.8}

The caller plays SENT in a loop, so HEARD holds it several times, late by the call's delay.
One whole repetition is cut out where it lines up best with SENT (cross-correlation at
16 kHz), and that is scored.
"""

import json
import sys
import wave

import numpy as np
from pesq import pesq
from scipy.signal import resample_poly

RATE = 16_000


def read(path):
    with wave.open(path, "rb") as file:
        if file.getsampwidth() != 2:
            raise SystemExit(f"{path}: not 16-bit PCM")
        frames = file.readframes(file.getnframes())
        channels = file.getnchannels()
        rate = file.getframerate()
    samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    divisor = np.gcd(rate, RATE)
    return resample_poly(samples, RATE // divisor, rate // divisor)


def main():
    sent, heard = read(sys.argv[1]), read(sys.argv[2])
    if len(heard) < len(sent) * 1.5:
        raise SystemExit(f"the recording ({len(heard) / RATE:.1f} s) holds no whole repetition")
    # Skip the first second (the call starting), then find the best start of one repetition.
    start = RATE
    search = heard[start : start + 2 * len(sent)]
    correlation = np.correlate(search, sent, mode="valid")
    offset = start + int(np.argmax(correlation))
    segment = heard[offset : offset + len(sent)]
    score = pesq(RATE, sent.astype(np.float32), segment.astype(np.float32), "wb")
    print(json.dumps({"pesq": round(float(score), 2), "offset_s": offset / RATE, "seconds": len(sent) / RATE}))


if __name__ == "__main__":
    main()
