"""Scores what a callee heard against the speech the caller sent: PESQ (ITU-T P.862.2, wideband).

    python score_audio.py SENT.wav HEARD.wav  ->  {"pesq": 3.9, "each": [3.8, 4.0], "seconds": 10.7}

The caller plays SENT in a loop, so HEARD holds it several times, late by the call's delay.
Each whole repetition is cut out where it lines up best with SENT (cross-correlation at
16 kHz) and scored; the score is their mean (one repetition alone varies by a few tenths
from call to call on a lossy path).
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


def best_offset(search, sent):
    """Where in `search` `sent` lines up best."""
    return int(np.argmax(np.correlate(search, sent, mode="valid")))


def main():
    sent, heard = read(sys.argv[1]), read(sys.argv[2])
    if len(heard) < len(sent) * 1.5:
        raise SystemExit(f"the recording ({len(heard) / RATE:.1f} s) holds no whole repetition")
    # Skip the first second (the call starting) and find where a repetition lines up best;
    # the others lie a length apart, each lined up again within half a second (the delay
    # drifts a little as the jitter buffer adapts).
    first = RATE + best_offset(heard[RATE : RATE + 2 * len(sent)], sent)
    scores = []
    for guess in range(first % len(sent), len(heard) - len(sent) + 1, len(sent)):
        low, high = max(guess - RATE // 2, RATE), guess + RATE // 2
        if high + len(sent) > len(heard):
            high = len(heard) - len(sent)
        if high < low:
            continue
        offset = low + best_offset(heard[low : high + len(sent)], sent)
        segment = heard[offset : offset + len(sent)]
        scores.append(float(pesq(RATE, sent.astype(np.float32), segment.astype(np.float32), "wb")))
    print(json.dumps({
        "pesq": round(float(np.mean(scores)), 2),
        "each": [round(score, 2) for score in scores],
        "seconds": len(sent) / RATE,
    }))

if __name__ == "__main__":
    main()
