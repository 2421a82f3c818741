"""W2S methods by name; importing this package registers every one of them."""

from gpu_worker.methods import (
    aux_conf,
    bootstrap,
    conf_filter,
    elicit,
    ensemble,
    knn,
    naive,
    product,
    propagate,
    robust,
    s2s,
    soft,
    transition,
    window,
)
from gpu_worker.methods.base import MethodInput, MethodSpec, Params, get_method, method_names, register_method

__all__ = [
    "MethodInput",
    "MethodSpec",
    "Params",
    "aux_conf",
    "bootstrap",
    "conf_filter",
    "elicit",
    "ensemble",
    "get_method",
    "knn",
    "method_names",
    "naive",
    "product",
    "propagate",
    "register_method",
    "robust",
    "s2s",
    "soft",
    "transition",
    "window",
]
