"""epigate: epidemic parameter estimation with physics-informed neural networks trained by
Conflict-Gated Gradient Scaling (CGGS), with the classical least-squares fit as reference."""

__version__ = "0.2.10"
