#!/usr/bin/env python3
"""NumPy/SciPy peer of rfloc-dsp's ESPRIT delay estimator, run on the same links as
`cargo bench --bench super_resolution` (frames 0..499 x 4 receivers of factory-a-walks-sync).

Same algorithm and parameters as `rfloc_dsp::EstimatorOptions::default()`: missing tones filled by
linear interpolation after de-rotating by the mean phase slope, strided sub-arrays (L = 24,
stride D = 5), forward-backward smoothed covariance, Hermitian eigen-decomposition (batched
`numpy.linalg.eigh` over all links), MDL order (<= 8 paths), LS-ESPRIT, LS gains, pruning of
paths 30 dB below the strongest, first path = earliest path within 15 dB of the strongest.

Reports links/s of this implementation and the first-path delay error on line-of-sight links for
this implementation and, with --rust-csv (output of `rfloc paths DATASET --out FILE`), for rfloc's,
computed by the same code here. Per-receiver offsets are calibrated as the median error over the
LoS links of the evaluated frames (the same for both implementations).

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy scipy
    /tmp/venv/bin/python benches/esprit_peer.py [--dataset DIR] [--frames 500] [--rust-csv FILE]
"""
import argparse
import csv
import json
import os
import sys
import time

import numpy as np
import scipy.linalg

L, D, MAX_P, MIN_REL_DB, MERGE_S, TMIN = 24, 5, 8, -30.0, 0.5e-9, -100e-9
FP_REL_DB = -15.0


def grid_of(offsets):
    df = np.min(np.diff(np.sort(offsets)))
    idx = np.round((offsets - offsets.min()) / df).astype(int)
    return offsets.min(), df, idx, idx.max() + 1


def to_uniform(h, f0, df, idx, n):
    """h: [links, K] -> [links, n], gaps interpolated in the de-rotated domain."""
    present = np.zeros(n, bool)
    present[idx] = True
    x = np.zeros((h.shape[0], n), complex)
    x[:, idx] = h
    pairs = present[:-1] & present[1:]
    acc = np.sum(x[:, 1:][:, pairs] * np.conj(x[:, :-1][:, pairs]), axis=1)
    tau = -np.angle(acc) / (2 * np.pi * df)
    freqs = f0 + np.arange(n) * df
    rot = np.exp(2j * np.pi * freqs[None, :] * tau[:, None])
    y = x * rot
    miss = np.where(~present)[0]
    if len(miss):
        have = np.where(present)[0]
        yr = np.array([np.interp(miss, have, row[have].real) for row in y])
        yi = np.array([np.interp(miss, have, row[have].imag) for row in y])
        y[:, miss] = yr + 1j * yi
    return y * np.conj(rot)


def covariances(x):
    """Batched strided, FB-averaged smoothed covariance: [links, L, L]."""
    n = x.shape[1]
    m = n - (L - 1) * D
    cols = np.arange(L) * D
    snaps = np.stack([x[:, t + cols] for t in range(m)], axis=1)  # [links, m, L]
    r = np.einsum("bmi,bmj->bij", snaps, np.conj(snaps)) / m
    j = r[:, ::-1, ::-1]
    return 0.5 * (r + np.conj(j)), m


def mdl(eigs_desc, m, kmax):
    lam = np.maximum(eigs_desc, eigs_desc[0] * 1e-15 + 1e-300)
    best, bk = np.inf, 0
    lf = len(lam)
    for k in range(kmax + 1):
        tail = lam[k:]
        a = tail.mean()
        g = np.exp(np.mean(np.log(tail)))
        s = -m * len(tail) * np.log(g / a) + 0.5 * k * (2 * lf - k) * np.log(m)
        if s < best:
            best, bk = s, k
    return bk


def estimate_links(h, offsets):
    f0, df, idx, n = grid_of(offsets)
    h = h / np.sqrt(np.mean(np.abs(h) ** 2, axis=1, keepdims=True))
    x = to_uniform(h, f0, df, idx, n)
    r, m = covariances(x)
    w, v = np.linalg.eigh(r)  # ascending
    w, v = w[:, ::-1], v[:, :, ::-1]
    kmax = min(MAX_P, L - 1, m - 1, len(offsets) // 3)
    period = 1.0 / (D * df)
    out = []
    for b in range(h.shape[0]):
        p = max(mdl(w[b], m, kmax), 1)
        us = v[b, :, :p]
        psi = scipy.linalg.lstsq(us[:-1], us[1:])[0]
        z = np.linalg.eigvals(psi)
        tau = -np.angle(z) / (2 * np.pi * D * df)
        tau = TMIN + np.mod(tau - TMIN, period)
        vm = np.exp(-2j * np.pi * offsets[:, None] * tau[None, :])
        a = scipy.linalg.lstsq(vm, h[b])[0]
        pw = np.abs(a) ** 2
        keep = []
        for i in np.argsort(-pw):
            if pw[i] < pw.max() * 10 ** (MIN_REL_DB / 10):
                continue
            if any(abs(tau[i] - tau[j]) < MERGE_S for j in keep):
                continue
            keep.append(i)
        keep = np.array(sorted(keep))
        if len(keep) < len(tau):
            tau = tau[keep]
            vm = np.exp(-2j * np.pi * offsets[:, None] * tau[None, :])
            a = scipy.linalg.lstsq(vm, h[b])[0]
        o = np.argsort(tau)
        out.append((tau[o], a[o]))
    return out


def first_path(tau, gain):
    pw = np.abs(gain) ** 2
    ok = pw >= pw.max() * 10 ** (FP_REL_DB / 10)
    return tau[ok].min()


def los_errors(first, d, kind, n_frames, n_rx):
    """|error| on LoS links after per-receiver median offset calibration."""
    err = []
    for r in range(n_rx):
        e = []
        for f in range(n_frames):
            los = np.where(kind[f, r] == 0)[0]
            if len(los) and np.isfinite(first[f, r]):
                e.append(first[f, r] - d[f, r, los[0]])
        e = np.array(e)
        err.extend(np.abs(e - np.median(e)))
    return np.array(err)


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", default=os.path.join(here, "..", "..", "shared", "datasets", "factory-a-walks-sync"))
    ap.add_argument("--frames", type=int, default=500)
    ap.add_argument("--rust-csv", default=None)
    args = ap.parse_args()
    if not os.path.isdir(args.dataset):
        print(f"skipped: {args.dataset} not found", file=sys.stderr)
        return
    meta = json.load(open(os.path.join(args.dataset, "meta.json")))
    offsets = np.array(meta["subcarrier_offsets_hz"])
    csi = np.load(os.path.join(args.dataset, "csi.npy"), mmap_mode="r")
    nf = min(args.frames, csi.shape[0])
    nr = csi.shape[1]
    h = np.asarray(csi[:nf, :, 0, :]).reshape(nf * nr, -1).astype(complex)
    estimate_links(h[:50], offsets)  # warm-up
    t0 = time.perf_counter()
    res = estimate_links(h, offsets)
    secs = time.perf_counter() - t0
    print(f"numpy {np.__version__} scipy {scipy.__version__}: {len(res)} links in {secs:.3f} s = {len(res) / secs:.0f} links/s (one process)")
    first_py = np.array([first_path(t, g) for t, g in res]).reshape(nf, nr)
    d = np.load(os.path.join(args.dataset, "paths_delay_s.npy"), mmap_mode="r")
    kind = np.load(os.path.join(args.dataset, "paths_kind.npy"), mmap_mode="r")
    e = los_errors(first_py, d, kind, nf, nr)
    print(f"python: LoS links {len(e)}, first-path |error| median {np.median(e) * 1e9:.3f} ns, p90 {np.percentile(e, 90) * 1e9:.3f} ns")
    if args.rust_csv:
        paths = {}
        with open(args.rust_csv) as fh:
            rd = csv.DictReader(fh)
            for row in rd:
                f, r = int(row["frame"]), int(row["receiver"])
                if f < nf and int(row["antenna"]) == 0:
                    paths.setdefault((f, r), []).append(
                        (float(row["delay_s"]), complex(float(row["gain_re"]), float(row["gain_im"])))
                    )
        first_rs = np.full((nf, nr), np.nan)
        for (f, r), p in paths.items():
            first_rs[f, r] = first_path(np.array([x[0] for x in p]), np.array([x[1] for x in p]))
        e = los_errors(first_rs, d, kind, nf, nr)
        print(f"rfloc:  LoS links {len(e)}, first-path |error| median {np.median(e) * 1e9:.3f} ns, p90 {np.percentile(e, 90) * 1e9:.3f} ns")
        both = np.isfinite(first_py) & np.isfinite(first_rs)
        diff = np.abs(first_py[both] - first_rs[both])
        print(f"python vs rfloc first path: identical within 1 ps on {np.mean(diff < 1e-12) * 100:.1f} % of links, median |diff| {np.median(diff) * 1e12:.3f} ps")


if __name__ == "__main__":
    main()
