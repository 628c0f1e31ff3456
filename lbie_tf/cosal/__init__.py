"""CoSaL: colourising shapes with artificial language (paper section 4.1)."""
