"""Meta-learning algorithms, one module each, all built on one inner loop (``inner_loop.py``).

Every algorithm has the same shape of API over a batch of tasks (arrays [T, K, ...]):
``init(params) -> meta_params``, ``meta_grad(meta_params, x_support, y_support, x_query, y_query)
-> (loss, grads)`` and ``adapt(meta_params, x_support, y_support) -> adapted params``; the
MAML family also has a differentiable ``meta_loss``.
"""

from .anil import ANIL
from .cavia import CAVIA
from .imaml import iMAML
from .inner_loop import final, inner_steps
from .maml import MAML
from .metasgd import MetaSGD
from .reptile import Reptile

ALGORITHMS = {cls.name: cls for cls in (MAML, MetaSGD, ANIL, CAVIA, Reptile, iMAML)}

__all__ = ["MAML", "MetaSGD", "ANIL", "CAVIA", "Reptile", "iMAML", "inner_steps", "final", "ALGORITHMS"]
