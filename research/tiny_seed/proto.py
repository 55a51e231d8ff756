"""Prototype: the "log-ratio" PINN for SEIR that works from a one-case seed.

State variables (all O(1) whatever the seed size; exact rewrite of SEIR, nonsingular at E0 = 0):
    x = log I,   q = E / I,   c = C / I   (C = cumulative entries into I since t = 0)
    S = S0 + E0 - I (c + q)             (conservation: S + E + C is constant; no S output)
    x' = sigma q - gamma
    q' = beta S - (sigma - gamma) q - sigma q^2
    c' = sigma q - c (sigma q - gamma)
Observables: I = exp(x); cumulative = c exp(x); incidence = C(t) - C(t_start).
Network (tanh MLP 1 -> 4, 64 x 3, last layer zero, input 2 tau - 1, tau = t / T), z = NN(tau):
    x(tau) = -softplus(-(x0 + tau (g + 5 z0)))       g trainable, init min(T r(guess), -0.8 x0)
    q(tau) = q0 exp(2 tau z3) + 2 tau softplus(z1)    (q >= 0; q0 = E0/I0)
    c(tau) = tau exp(3 z2)                            (c >= 0, c(0) = 0)
Residual rows (tau units), stacked over 512 uniform + 64 geometric-early collocation points:
    R_x = x_tau - T(sigma q - gamma);  R_q = q_tau - T(beta S - (sigma-gamma) q - sigma q^2);
    R_c = (c_tau - T(sigma q - c(sigma q - gamma))) / (1 + c);   L_phys = mean(R^2)
Data: the project's misfit (scaled squared, or mean deviance / count_scale for counts); a smooth
floor (1e-3 + softplus(10 (mu - 1e-3)) / 10 people) in the first-order phases only.
Rates: closed form every evaluation (residual is linear in the rates), with the ALM shift.
Recipe (train): pre 1000 Adam steps physics-only at the guess rates (beta x pre_factors[k]);
3000 Adam steps (lr 2e-3 cosine to 1e-4) on L_data + lam L_phys, lam 1e-4 -> 1e-2 geometric;
then L-BFGS (memory 20) rounds of 1500 steps with augmented Lagrangian
L_data + lam mean(R^2) + mean(mu R), mu += 0.5 * 2 lam R after each round (damped; the full step
oscillates), lam = 0.01,0.01,0.1,0.1,1,1,1,1 (8 rounds).
K members under vmap; keep the one whose rates give the lowest ODE misfit (cases.ode_loss).
"""
import sys, time, functools
import os; HERE = os.path.dirname(os.path.abspath(__file__)); sys.path.insert(0, os.path.join(HERE, "snap", "src")); sys.path.insert(0, HERE)
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np
import optax
import equinox as eqx
from jax.flatten_util import ravel_pytree
from epigate.data import scaled_values, initial_fractions
from epigate.likelihood import data_misfit
from epigate.models import SEIR
import cases

GUESS = np.array([0.4, 0.3, 0.2])


def r_growth(p, S0=1.0):
    b, s, g = p
    return 0.5 * (-(s + g) + jnp.sqrt((s - g) ** 2 + 4 * s * b * S0))


def setup(name, n_colloc=512, early=64):
    obs, fixed, lik = cases.case(name)
    y, mask, scale = scaled_values(obs)
    u0 = initial_fractions(SEIR, obs)
    T = float(obs.horizon)
    ch = obs.channels[0]
    ts = obs.t_start if obs.t_start is not None else obs.t
    free = np.array([k not in fixed for k in SEIR.params])
    pfix = np.array([fixed.get(k, 1.0) for k in SEIR.params])
    # residual scale of h: the final cumulative infection the data suggest
    frac = np.nan_to_num(obs.values[:, 0]) / obs.population
    if ch == "cumulative":
        ah = frac.max()
    elif ch == "incidence":
        ah = frac.sum()
    else:
        ah = frac.max() * T * 0.2
    ah = float(np.clip(ah, 1e-4, 1.0))
    tc = np.unique(np.concatenate([np.linspace(0, 1, n_colloc), np.geomspace(1e-4, 0.05, early)]))
    P = dict(tau=obs.t / T, tau_s=ts / T, y=y[:, 0], mask=mask[:, 0].astype(float), scale=scale[0],
             cnt=obs.population * scale[0], u0=u0, T=T, tc=tc, ah=ah)
    P = {k: jnp.asarray(v) for k, v in P.items()}
    return dict(P=P, ch=ch, lik=lik, free=free, pfix=pfix, name=name, obs=obs, fixed=fixed)


def make(S, width=64, depth=3, ax=5.0, aq=2.0, ah_mult=2.0, growth=True, w=(1.0, 1.0, 1.0), ac=3.0, causal=0.0, dscale=1.0):
    P, ch, lik, free, pfix = S["P"], S["ch"], S["lik"], S["free"], S["pfix"]
    T = float(P["T"]); u0 = np.asarray(P["u0"])
    S0, E0, I0 = u0[0], u0[1], u0[2]
    x0, q0 = np.log(I0), E0 / I0
    ah = float(P["ah"]) * ah_mult
    g0 = min(T * float(r_growth(np.where(free, GUESS, pfix), S0)), -0.8 * x0) if growth else 0.0

    qb = 0.0

    def build(key):
        mlp = eqx.nn.MLP(1, 4, width, depth, activation=jnp.tanh, key=key)
        last = mlp.layers[-1]
        return eqx.tree_at(lambda m: (m.layers[-1].weight, m.layers[-1].bias), mlp,
                           (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)))
    p0, static = eqx.partition(build(jax.random.PRNGKey(0)), eqx.is_array)
    _, unravel = ravel_pytree(p0)

    def init(key):
        th = ravel_pytree(eqx.partition(build(key), eqx.is_array)[0])[0]
        return jnp.concatenate([th, jnp.array([g0])])

    def states(th, tau):
        mlp = eqx.combine(unravel(th[:-1]), static)
        z = jax.vmap(mlp)((2 * tau - 1)[:, None])
        x = -jax.nn.softplus(-(x0 + tau * (th[-1] + ax * z[:, 0])))  # log I, I <= 1
        # q = E/I >= 0 (a negative E opens spurious branches)
        q = q0 * jnp.exp(tau * aq * z[:, 3]) + tau * aq * jax.nn.softplus(z[:, 1] + qb)
        c = tau * jnp.exp(ac * z[:, 2])  # C/I, C = cumulative entries into I since t = 0
        return jnp.stack([x, q, c], 1)

    def observe(v, vs):
        if ch == "I":
            return jnp.exp(v[:, 0])
        cum = lambda v: v[:, 2] * jnp.exp(v[:, 0])
        if ch == "cumulative":
            return cum(v)
        return cum(v) - cum(vs)

    fr = jnp.asarray(free); pf = jnp.asarray(pfix)

    def resid_parts(th):
        tc = P["tc"]
        v, dv = jax.jvp(lambda t: states(th, t), (tc,), (jnp.ones_like(tc),))
        x, q, c = v[:, 0], v[:, 1], v[:, 2]
        I = jnp.exp(x)
        Sv = S0 + E0 - I * (c + q)  # conservation: S + E + C is constant
        # residual = b - A p  (p = beta, sigma, gamma)
        z0 = jnp.zeros_like(x); one = jnp.ones_like(x)
        Ax = jnp.stack([z0, q, -one], 1) * T
        Aq = jnp.stack([Sv, -q - q * q, q], 1) * T
        wc = 1.0 / (1.0 + c)
        Ac = jnp.stack([z0, q - c * q, c], 1) * T * wc[:, None]
        A = jnp.concatenate([Ax * w[0], Aq * w[1], Ac * w[2]])
        b = jnp.concatenate([dv[:, 0] * w[0], dv[:, 1] * w[1], dv[:, 2] * wc * w[2]])
        return A, b

    cw = None
    if causal:
        nc = P["tc"].shape[0]

    def rates_of(th, mu=None, lam=1.0):
        A, b = resid_parts(th)
        if mu is not None:  # augmented Lagrangian: argmin_p mean(mu r) + lam mean(r^2)
            b = b + mu / (2 * lam)
        b2 = b - A[:, ~free] @ pfix[~free]
        Af = A[:, free]
        col = jnp.linalg.norm(Af, axis=0) + 1e-300
        An = Af / col
        pf_ = jnp.linalg.solve(An.T @ An + 1e-12 * jnp.eye(An.shape[1]), An.T @ b2) / col
        p = jnp.asarray(pfix).at[np.where(free)[0]].set(jnp.maximum(pf_, 1e-8))
        return p

    def losses(th, p=None, smooth=False, mu=None, lam=1.0):
        if p is None:
            p = rates_of(th, mu, lam)
        A, b = resid_parts(th)
        r = b - A @ p
        l_phys = jnp.mean(r ** 2)
        if mu is not None:  # returns the augmented physics term / lam, and r for the update
            l_phys = l_phys + jnp.mean(mu * r) / lam
        v = states(th, P["tau"]); vs = states(th, P["tau_s"])
        pred = observe(v, vs) / P["scale"]
        if smooth and lik != "squared":  # the hard floor at 1e-3 people has no gradient below it
            mu = pred * P["cnt"]
            pred = (1e-3 + jax.nn.softplus(10.0 * (mu - 1e-3)) / 10.0) / P["cnt"]
        pp = data_misfit(lik, pred, P["y"], P["cnt"], 10.0, xp=jnp)
        l_data = (P["mask"] * pp).sum() / P["mask"].sum()
        if lik != "squared":
            l_data = l_data / P["cnt"]  # deviance ~ count * squared error: back to scaled units
        return l_data * dscale, l_phys, p

    def residual(th, p):
        A, b = resid_parts(th)
        return b - A @ p

    return dict(init=init, states=states, losses=losses, rates_of=rates_of, residual=residual, observe=observe)


def train(S, K=4, pre=1000, adam=3000, lbfgs=1500, lr=2e-3, lams=(0.01, 0.01, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0),
          lam_adam=(1e-4, 1e-2), verbose=False, alm=True, pre_factors=(1.0,), alm_step=0.5, **net):
    N = make(S, **net)
    keys = jax.random.split(jax.random.PRNGKey(0), K)
    th = jax.vmap(N["init"])(keys)
    t0 = time.perf_counter()

    def obj(th, lam, smooth=False):
        ld, lp, _ = N["losses"](th, smooth=smooth)
        return ld + lam * lp

    # multi-start: member k pre-trains on the ODE at the guess with beta x factor (as the classical restarts)
    fac = np.array([pre_factors[k % len(pre_factors)] for k in range(K)])
    pg = np.where(S["free"], GUESS, S["pfix"])
    pguess = jnp.asarray(np.stack([pg * np.array([f, 1, 1]) if S["free"][0] else pg for f in fac]))
    opt0 = optax.adam(optax.cosine_decay_schedule(lr, max(pre, 1), 0.1))

    @jax.jit
    def run_pre(th):  # physics only at the guess rates: start from an epidemic-shaped curve
        def one(th, pguess):
            st = opt0.init(th)
            def body(c, _):
                th, st = c
                g = jax.grad(lambda t: N["losses"](t, pguess)[1])(th)
                u, st = opt0.update(g, st, th)
                return (optax.apply_updates(th, u), st), None
            return jax.lax.scan(body, (th, st), None, length=pre)[0][0]
        return jax.vmap(one)(th, pguess)

    opt = optax.adam(optax.cosine_decay_schedule(lr, max(adam, 1), 0.05))

    @jax.jit
    def run_adam(th):
        def one(th):
            st = opt.init(th)
            def body(c, k):
                th, st = c
                lam = lam_adam[0] * (lam_adam[1] / lam_adam[0]) ** (k / adam)
                g = jax.grad(obj)(th, lam, True)
                u, st = opt.update(g, st, th)
                return (optax.apply_updates(th, u), st), None
            return jax.lax.scan(body, (th, st), jnp.arange(adam))[0][0]
        return jax.vmap(one)(th)

    lb = optax.lbfgs(memory_size=20)

    def obj_alm(th, lam, mu):
        ld, lp, _ = N["losses"](th, mu=mu, lam=lam)
        return ld + lam * lp

    @functools.partial(jax.jit, static_argnums=3)
    def run_lbfgs(th, lam, mu, n):
        def one(th, mu):
            f = lambda t: obj_alm(t, lam, mu)
            vg = optax.value_and_grad_from_state(f)
            def body(c, _):
                th, st = c
                val, g = vg(th, state=st)
                u, st2 = lb.update(g, st, th, value=val, grad=g, value_fn=f)
                th2 = optax.apply_updates(th, u)
                ok = jnp.all(jnp.isfinite(th2)) & jnp.isfinite(optax.tree_utils.tree_get(st2, "value"))
                return (jnp.where(ok, th2, th), jax.tree.map(lambda a, b: jnp.where(ok, a, b), st2, lb.init(th))), None
            th = jax.lax.scan(body, (th, lb.init(th)), None, length=n)[0][0]
            if alm:
                p = N["rates_of"](th, mu, lam)
                mu = mu + alm_step * 2 * lam * N["residual"](th, p)
            return th, mu
        return jax.lax.map(lambda a: one(*a), (th, mu))

    info = jax.jit(jax.vmap(lambda t: N["losses"](t)))
    log = []
    if pre:
        th = run_pre(th)
        ld, lp, p = info(th); log.append(("pre", np.asarray(p[:, 0] / p[:, 2]), np.asarray(ld), np.asarray(lp)))
    if adam:
        th = run_adam(th)
        ld, lp, p = info(th); log.append(("adam", np.asarray(p[:, 0] / p[:, 2]), np.asarray(ld), np.asarray(lp)))
    M = 3 * S["P"]["tc"].shape[0]
    mu = jnp.zeros((K, M))
    for lam in lams:
        if not alm:
            mu = jnp.zeros((K, M))
        th, mu = run_lbfgs(th, lam, mu if alm else None, lbfgs) if alm else (run_lbfgs(th, lam, None, lbfgs)[0], mu)
        ld, lp, p = info(th); log.append((f"lbfgs{lam:g}", np.asarray(p[:, 0] / p[:, 2]), np.asarray(ld), np.asarray(lp)))
    jax.block_until_ready(th)
    el = time.perf_counter() - t0
    p = np.asarray(info(th)[2])
    if verbose:
        for l in log:
            print("  ", l[0], "R0", np.round(l[1], 4), "Ld", np.array2string(l[2], precision=3), "Lp", np.array2string(l[3], precision=2))
    return p, el, log, th, N


def evaluate(name, p, ref):
    mis = np.array([cases.ode_loss(name, pi) if np.all(np.isfinite(pi)) else np.inf for pi in p])
    r0 = p[:, 0] / p[:, 2]
    return r0, mis / ref.loss


if __name__ == "__main__":
    import json
    names = sys.argv[1].split(",")
    kw0 = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    for name in names:
        kw = dict(kw0); do_refine = kw.pop("refine", False)
        S = setup(name, **kw.pop("setup", {})) if False else setup(name)
        ref = cases.reference(name)
        p, el, log, th, N = train(S, verbose=True, **kw)
        r0, ratio = evaluate(name, p, ref)
        best = int(np.argmin(ratio))
        print(f"{name}: LSQ R0 {ref.r0:.4f} | PINN R0 {np.round(r0, 4)} misfit {np.round(ratio, 3)} | best {r0[best]:.4f} "
              f"({100*(r0[best]/ref.r0-1):+.1f}%) ratio {ratio[best]:.3f} | {el:.0f}s", flush=True)
        if do_refine:
            from refine6 import make_refiner
            t1 = time.perf_counter()
            ro = do_refine if isinstance(do_refine, dict) else {}
            ref6 = make_refiner(S, N, n_inner=ro.get("n_inner", 300))
            out = [ref6(th[k], p[k], verbose=True, h=ro.get("h", 1e-4), iters=ro.get("iters", 8)) for k in range(len(p))]
            p6 = np.stack([np.asarray(o[0]) for o in out])
            r06, ratio6 = evaluate(name, p6, ref)
            b6 = int(np.argmin(ratio6))
            print(f"{name} +refine6: R0 {np.round(r06, 4)} misfit {np.round(ratio6, 3)} | best {r06[b6]:.4f} "
                  f"({100*(r06[b6]/ref.r0-1):+.2f}%) ratio {ratio6[b6]:.3f} | +{time.perf_counter()-t1:.0f}s", flush=True)
