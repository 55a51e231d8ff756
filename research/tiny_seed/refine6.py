"""Candidate 6: Levenberg-Marquardt on the free log-rates, with the network as the inner ODE solve.

For given rates p the network is re-fitted to the physics alone (pinned start, warm start,
L-BFGS); the data residuals of the network's curve are the outer least-squares residuals; their
Jacobian w.r.t. log p by forward differences (each column one warm-started inner solve).
"""
import functools
import numpy as np
import jax, jax.numpy as jnp, optax
from epigate.likelihood import data_misfit


def make_refiner(S, N, n_inner=300):
    P, lik, free, pfix = S["P"], S["lik"], S["free"], S["pfix"]
    lb = optax.lbfgs(memory_size=20)

    @functools.partial(jax.jit, static_argnums=2)
    def inner(th, p, n):
        f = lambda t: N["losses"](t, p)[1]
        vg = optax.value_and_grad_from_state(f)
        def body(c, _):
            th, st = c
            val, g = vg(th, state=st)
            u, st2 = lb.update(g, st, th, value=val, grad=g, value_fn=f)
            th2 = optax.apply_updates(th, u)
            ok = jnp.all(jnp.isfinite(th2))
            return (jnp.where(ok, th2, th), jax.tree.map(lambda a, b: jnp.where(ok, a, b), st2, lb.init(th))), None
        th = jax.lax.scan(body, (th, lb.init(th)), None, length=n)[0][0]
        return th, f(th)

    @jax.jit
    def data_res(th):  # signed deviance residuals / sqrt(n), as the classical fit
        v = N["states"](th, P["tau"]); vs = N["states"](th, P["tau_s"])
        pred = N["observe"](v, vs) / P["scale"]
        m = P["mask"]
        if lik == "squared":
            r = pred - P["y"]
        else:
            dev = data_misfit(lik, pred, P["y"], P["cnt"], 10.0, xp=jnp)
            r = jnp.sign(pred - P["y"]) * jnp.sqrt(jnp.maximum(dev, 0.0))
        return r * m / jnp.sqrt(m.sum())

    def rates(z):
        p = np.array(pfix, float); p[free] = np.exp(z); return jnp.asarray(p)

    def refine(th, p0, iters=8, h=1e-4, verbose=False):
        z = np.log(np.asarray(p0)[free])
        th, _ = inner(th, rates(z), 4 * n_inner)
        r = np.asarray(data_res(th)); cost = r @ r; mu = 1e-3
        for it in range(iters):
            J = []
            for j in range(len(z)):
                dz = np.zeros_like(z); dz[j] = h
                thj, _ = inner(th, rates(z + dz), n_inner)
                J.append((np.asarray(data_res(thj)) - r) / h)
            J = np.stack(J, 1)
            JTJ = J.T @ J
            while True:
                step = -np.linalg.solve(JTJ + mu * np.diag(np.diag(JTJ)) + 1e-14 * np.eye(len(z)), J.T @ r)
                th_n, lp = inner(th, rates(z + step), n_inner)
                r_n = np.asarray(data_res(th_n)); c_n = r_n @ r_n
                if c_n < cost or mu > 1e6:
                    break
                mu *= 10
            if c_n < cost:
                z, th, r, cost, mu = z + step, th_n, r_n, c_n, mu / 10
            if verbose:
                print(f"    LM {it}: cost {cost:.6g} p {np.exp(z)} Lp {float(lp):.2e}", flush=True)
            if np.max(np.abs(step)) < 1e-7:
                break
        return rates(z), th, cost

    return refine
