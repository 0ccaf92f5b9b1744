"""The training engine behind the example scripts, importable on its own.

A method (DANN, CDAN, MDD, BSP, or your own) is a :class:`Method`; :func:`main` parses tllib's flags
for it, plus ILA-DA's, and runs the phase asked for::

    from ila_tllib.engine import Method, main
    main(MyMethod())

=================  ==============================================================================
module             what it decides
=================  ==============================================================================
``flags``          the flags, their defaults and their checks
``batches``        which batch feeds which loss (:class:`BatchPlan`)
``method``         what a method adds (:class:`Method`, :class:`Outputs`)
``loop``           the optimiser and schedule, one training step, an epoch, evaluation
``precision``      --amp (bfloat16 networks, float32 losses) and --channels-last
``ila_term``       ILA-DA's term of the loss and its diagnostics
``moving_average`` the slowly moving copy of the network ILA mines on (--ila-mining-ema, on by default)
``checkpoint``     the --log folder: lock, checkpoints, weights and states read back
``resume``         --resume: what resume.pth holds, the checks before a run continues it, the loading
``resume_flags``   which flags a resume may change, and how a refused change is told
``output``         the one owner of stdout/stderr (terminal, pipe and log file)
``analysis``       t-SNE, A-distance and the affinity figure
``errors``         exit codes: 0 done, 2 bad input, 3 divergence
``peers``          under torchrun: one process's error ends every process, with its code and message
``run``            all of it in order
=================  ==============================================================================
"""
from .batches import Batch, BatchPlan
from .errors import EXIT_DIVERGED, EXIT_OK, EXIT_USAGE, DivergenceError, UsageError
from .flags import check_args, get_parser
from .loop import Trainer, make_optimizer, validate
from .method import Method, Outputs, domain_accuracy
from .run import main, run

__all__ = ["Method", "Outputs", "domain_accuracy", "main", "run", "get_parser", "check_args", "BatchPlan",
           "Batch", "Trainer", "make_optimizer", "validate", "UsageError", "DivergenceError", "EXIT_OK",
           "EXIT_USAGE", "EXIT_DIVERGED"]
