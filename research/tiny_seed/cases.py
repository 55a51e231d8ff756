"""The benchmark cases and their least-squares references (project API, read-only use)."""
import sys
import os; sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "snap", "src"))
import numpy as np
from epigate.csvinput import read_csv
from epigate.data import synthetic_outbreak
from epigate.models import SEIR
from epigate.classical import classical_fit, OdeObjective

SIG, GAM = 1 / 5.3, 1 / 5.61
D = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "data") + "/"


def case(name):
    """-> (obs, fixed, likelihood)"""
    if name == "guinea":
        obs = read_csv(D + "ebola_west_africa_2014_cumulative.csv", time="date", observe={"cumulative": "cum_guinea_cases"},
                       population=1e6, initial={"I": 1e-6}, start="2013-12-02")
        return obs, {"sigma": SIG, "gamma": GAM}, "poisson"
    if name == "kikwit":
        obs = read_csv(D + "ebola_kikwit_1995_daily.csv", time="day", observe={"incidence": "onset"},
                       population=5364500, initial={"I": 1 / 5364500})
        return obs, {"sigma": SIG, "gamma": GAM}, "poisson"
    if name == "synthI":
        obs = synthetic_outbreak("seir", {"beta": 0.9, "sigma": 0.5, "gamma": 0.25}, population=200000, horizon=60,
                                 observe=("I",), n_obs=20, noise="gaussian", noise_level=0.10,
                                 initial={"E": 10 / 200000, "I": 10 / 200000}, seed=0)
        return obs, {}, "squared"
    if name.startswith("syn:"):  # syn:<seed fraction>:<channel>:<noise>:<horizon>:<beta|all>
        _, frac, ch, noise, hor, free = name.split(":")
        N = 1e7
        obs = synthetic_outbreak("seir", {"beta": 0.3, "sigma": 0.2, "gamma": 0.1}, population=N, horizon=float(hor),
                                 observe=(ch,), n_obs=40, noise=noise, noise_level=0.05,
                                 initial={"I": float(frac)}, seed=1)
        fixed = {"sigma": 0.2, "gamma": 0.1} if free == "beta" else {}
        return obs, fixed, ("squared" if noise == "gaussian" else "poisson")
    if name.startswith("tiny"):  # tiny_beta / tiny_all
        obs = synthetic_outbreak("seir", {"beta": 0.3, "sigma": 0.2, "gamma": 0.1}, population=1e6, horizon=200,
                                 observe=("cumulative",), n_obs=40, noise="poisson", initial={"I": 1e-6}, seed=0)
        fixed = {"sigma": 0.2, "gamma": 0.1} if name == "tiny_beta" else {}
        return obs, fixed, "poisson"
    raise KeyError(name)


def reference(name):
    obs, fixed, lik = case(name)
    c = classical_fit(SEIR, obs, fixed=fixed, likelihood=lik)
    return c


def ode_loss(name, rates):
    obs, fixed, lik = case(name)
    o = OdeObjective(SEIR, obs, fixed, {}, lik, 10.0, ())
    from epigate.data import initial_fractions
    return o.loss_of(np.asarray(rates), np.ones(len(obs.channels)), initial_fractions(SEIR, obs))


if __name__ == "__main__":
    for n in ["guinea", "kikwit", "synthI", "tiny_beta", "tiny_all"]:
        obs, fixed, lik = case(n)
        c = reference(n)
        print(n, obs.t[:3], obs.t[-1], len(obs.t), obs.values[:3, 0], obs.values[-1, 0], c.rates, "R0", round(c.r0, 4), "loss", c.loss, c.success)
