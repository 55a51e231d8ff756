import jax, jax.numpy as jnp, numpy as np
import epigate.pinn as pinn
from epigate.likelihood import data_misfit as original
from epigate.csvinput import read_csv
from epigate.assumptions import Assumptions
from epigate.config import TrainConfig
from epigate.fit import fit
from epigate.models import SEIR
from epigate.diagnosis import diagnose

def smooth(likelihood, pred, y, count_scale, dispersion, xp=np):
    if likelihood == "squared" or xp is np:
        return original(likelihood, pred, y, count_scale, dispersion, xp=xp)
    mu = 1e-3 + jax.nn.softplus(10 * (pred * count_scale - 1e-3)) / 10
    return original(likelihood, mu / count_scale, y, count_scale, dispersion, xp=xp)

pinn.data_misfit = smooth
obs = read_csv("../shared/data/ebola_west_africa_2014_cumulative.csv", time="date", start="2013-12-02",
               observe={"cumulative": "cum_guinea_cases"}, population=1e6)
a = Assumptions(fixed={"sigma": 1/5.3, "gamma": 1/5.61}, likelihood="poisson")
r = fit(obs, SEIR, TrainConfig(precision="float64"), [0], a)
print("smooth floor: R0", r.r0, "LSQ", r.classical.r0, "misfit", r.misfit_ratio, diagnose(r).reasons)
