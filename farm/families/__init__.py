"""Trial families, one module per family as trials/*.yaml names it (tabular_a, tabular_b,
fruit_pairs, spiked, conditional): each says in a few lines what data, models and metric it
uses. kinds.py binds each `kind:` to its family's functions; image_common.py holds what the
image families share; each kind's settings are in farm/config/family_params.py.
"""
