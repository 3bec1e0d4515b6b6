#!/usr/bin/env python3
"""csiread (the usual Python reader) on the same samples as benches/csi_parse.rs.

Peer measurement only, never part of rfloc. Set up once:
    python3 -m venv /tmp/csiread-venv && /tmp/csiread-venv/bin/pip install csiread==1.4.1
Run:
    /tmp/csiread-venv/bin/python benches/csiread_peer.py [../shared/csi-samples]

Prints MiB/s and frames/s per file (median of repeated full reads, >= 1 s per file). csiread's
ESP32 reader cannot read files with a header line or a corrupt line, so it is timed on a cleaned
copy (those lines removed), as the reference JSONs were made.
"""
import contextlib
import os
import statistics
import sys
import tempfile
import time

import csiread

HERE = os.path.dirname(os.path.abspath(__file__))
SAMPLES = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared", "csi-samples")

FILES = [
    ("intel5300/csikit_example.dat", lambda f: csiread.Intel(f, nrxnum=3, ntxnum=3, if_report=False)),
    ("intel5300/csiread_sample_0x1_ap.dat", lambda f: csiread.Intel(f, nrxnum=3, ntxnum=3, if_report=False)),
    ("intel5300/csiread_sample_0x5_64_3000.dat", lambda f: csiread.Intel(f, nrxnum=3, ntxnum=3, if_report=False)),
    ("atheros/csiread_ath_csi_1.dat", lambda f: csiread.Atheros(f, nrxnum=3, ntxnum=3, tones=56, if_report=False)),
    ("nexmon/csikit_example_4339.pcap", lambda f: csiread.Nexmon(f, chip="4339", bw=80, if_report=False)),
    ("nexmon/csikit_example_43455c0.pcap", lambda f: csiread.NexmonPull46(f, chip="43455c0", bw=80, if_report=False)),
    ("esp32/esp32csitool_example_csi.csv", lambda f: csiread.ESP32(f, csi_only=False)),
    ("esp32/csikit_example_data.csv", lambda f: csiread.ESP32(f, csi_only=False)),
    ("esp32/csikit_example_100hz_pitraffic.csv", lambda f: csiread.ESP32(f, csi_only=False)),
]


def cleaned_esp32(path, tmp):
    """Only well-formed CSI_DATA lines (csiread.ESP32 fails on anything else)."""
    out = os.path.join(tmp, os.path.basename(path))
    with open(path) as src, open(out, "w") as dst:
        for line in src:
            if not line.startswith("CSI_DATA"):
                continue
            inner = line[line.index("[") + 1 : line.rindex("]")].split()
            if len(inner) % 2:
                continue
            dst.write(line)
    return out


def count(reader):
    for attr in ("csi", "timestamp_low", "timestamp"):
        v = getattr(reader, attr, None)
        if v is not None:
            return len(v)
    return -1


def main():
    tmp = tempfile.mkdtemp()
    print(f"csiread {csiread.__version__}")
    print(f"{'file':45s} {'bytes':>9s} {'frames':>7s} {'time':>10s} {'MiB/s':>8s} {'frames/s':>11s}")
    for name, make in FILES:
        path = os.path.join(SAMPLES, name)
        if not os.path.exists(path):
            print(f"skipped: {path} missing", file=sys.stderr)
            continue
        if name.startswith("esp32/"):
            path = cleaned_esp32(path, tmp)
        size = os.path.getsize(os.path.join(SAMPLES, name))
        times = []
        frames = 0
        deadline = time.perf_counter() + 1.0
        while time.perf_counter() < deadline or len(times) < 5:
            t0 = time.perf_counter()
            with open(os.devnull, "w") as null, contextlib.redirect_stdout(null):
                r = make(path)
                r.read()
            times.append(time.perf_counter() - t0)
            frames = count(r)
        t = statistics.median(times)
        print(f"{name:45s} {size:9d} {frames:7d} {t*1e3:8.3f}ms {size/t/2**20:8.1f} {frames/t:11.0f}")


if __name__ == "__main__":
    main()
