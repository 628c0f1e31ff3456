"""CoSaL: Colorizing Shapes with Artificial Language (Chen et al. 2018)."""
