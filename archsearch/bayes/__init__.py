"""The Bayesian surrogate: closed forms, the NumPyro model, pipeline prediction, the sampler."""
