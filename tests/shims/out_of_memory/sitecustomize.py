# Put this folder first on PYTHONPATH and set ILA_TEST_OUT_OF_MEMORY to run a script whose first backward pass
# runs out of memory: "device" raises torch's OutOfMemoryError as CUDA does, "host" the CPU allocator's
# RuntimeError. Nothing changes without the variable.
import os

_MODE = os.environ.get("ILA_TEST_OUT_OF_MEMORY")

if _MODE:
    import torch

    def _backward_out_of_memory(self, *args, **kwargs):
        if _MODE == "device":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 1.38 GiB. GPU 0 has a total "
                                         "capacity of 79.19 GiB of which 1.02 GiB is free.")
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate "
                           "memory: you tried to allocate 1481763717120 bytes. Error code 12 (Cannot allocate "
                           "memory)")

    torch.Tensor.backward = _backward_out_of_memory
