#!/usr/bin/env python3
"""Side-by-side training-step timing: rfloc's encoder MLP (inputs->128->128->128->2, ReLU,
batch 256, MSE, Adam lr 1e-3) in JAX (jit, CPU) vs burn (flex CPU, `examples/train_step.rs`).

Run from the workspace root:
    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install "jax[cpu]"
    cargo build --release -p rfloc-learn --example train_step
    /tmp/jaxenv/bin/python benches/train_peer.py [--inputs 44] [--batch 256] [--steps 300]
Prints steps/s for both and the ratio. Both use all cores of the machine by default.
"""
import argparse
import subprocess
import time

import jax
import jax.numpy as jnp


def init(key, sizes):
    params = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        k = jax.random.fold_in(key, i)
        bound = 1.0 / (a ** 0.5)
        params.append((jax.random.uniform(k, (a, b), minval=-bound, maxval=bound), jnp.zeros((b,))))
    return params


def forward(params, x):
    for w, b in params[:-1]:
        x = jax.nn.relu(x @ w + b)
    w, b = params[-1]
    return x @ w + b


def loss_fn(params, x, y):
    d = forward(params, x) - y
    return jnp.mean(d * d)


@jax.jit
def step(params, m, v, t, x, y):
    g = jax.grad(loss_fn)(params, x, y)
    b1, b2, eps, lr = 0.9, 0.999, 1e-5, 1e-3
    m = jax.tree_util.tree_map(lambda m_, g_: b1 * m_ + (1 - b1) * g_, m, g)
    v = jax.tree_util.tree_map(lambda v_, g_: b2 * v_ + (1 - b2) * g_ * g_, v, g)
    mh = jax.tree_util.tree_map(lambda m_: m_ / (1 - b1 ** t), m)
    vh = jax.tree_util.tree_map(lambda v_: v_ / (1 - b2 ** t), v)
    params = jax.tree_util.tree_map(lambda p, a, b: p - lr * a / (jnp.sqrt(b) + eps), params, mh, vh)
    return params, m, v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--inputs", type=int, default=44)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--burn", default="target/release/examples/train_step")
    a = ap.parse_args()
    key = jax.random.PRNGKey(0)
    params = init(key, [a.inputs, 128, 128, 128, 2])
    m = jax.tree_util.tree_map(jnp.zeros_like, params)
    v = jax.tree_util.tree_map(jnp.zeros_like, params)
    x = (jnp.arange(a.batch * a.inputs, dtype=jnp.float32).reshape(a.batch, a.inputs) * 7919 % 1000) / 1000.0
    y = (jnp.arange(a.batch * 2, dtype=jnp.float32).reshape(a.batch, 2) * 104729 % 1000) / 100.0
    for t in range(1, 21):
        params, m, v = step(params, m, v, float(t), x, y)
    jax.block_until_ready(params)
    t0 = time.perf_counter()
    for t in range(21, 21 + a.steps):
        params, m, v = step(params, m, v, float(t), x, y)
    jax.block_until_ready(params)
    s = time.perf_counter() - t0
    jax_sps = a.steps / s
    out = subprocess.run([a.burn, str(a.inputs), str(a.batch), str(a.steps)], capture_output=True, text=True, check=True).stdout
    burn_sps = float(out.split()[2])
    print(f"jax {jax.__version__} steps_per_s {jax_sps:.1f} ms_per_step {1e3 / jax_sps:.3f}")
    print(out.strip())
    print(f"burn/jax speed ratio {burn_sps / jax_sps:.2f}")


if __name__ == "__main__":
    main()
