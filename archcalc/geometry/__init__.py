"""Sliding-window geometry, the floor below the layer kinds: output sizes of a window
(`window`) and receptive-field algebra (`receptive_field`). Imports nothing from archcalc but
`archcalc.errors`, so every kind and the analysis above may use it."""
