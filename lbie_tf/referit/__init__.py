"""ReferIt: segmenting the object a referring expression names (section 4.2)."""
