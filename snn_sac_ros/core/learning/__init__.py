"""The learning math, on NumPy arrays: what the Nengo operators, the replay trainer and the real-time floor share.

``lif`` holds the LIF rate and its bounded derivative, ``rules`` the per-synapse update (Adam moments or the plain
``-eta e a^T``), the anchor and the weight decay, ``feedback`` how errors reach the hidden layers (and a critic's
action gradient) in each feedback mode, ``perturbation`` the weight-perturbation rule, ``kernels`` the numba
kernels under all of them. A batch of one is one online sample, so online and replay learning change weights alike.
"""
