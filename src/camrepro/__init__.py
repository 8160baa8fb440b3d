"""camrepro: replicate CAM (Zhou et al. 2016) and Rethinking CAM (Bae et al. 2020) end to end."""

__version__ = "0.1.0"
