"""Command line, embedded model and lm-eval integration of the icl-ft package.

Kept import-light: `icl_ft_lm_eval.pth` imports `icl_ft._lm_eval_hook` at every
interpreter start, which must not pull in torch or lm_eval.
"""

__version__ = "0.1.0"
