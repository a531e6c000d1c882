"""Building blocks shared by the lab, the probe and the theory: activations and initialisations."""
