"""Oxford-102 flowers: colourising a flower from its caption (section 4.3)."""
