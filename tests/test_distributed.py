"""Data-parallel ILA: two gloo processes on the CPU must reproduce one process on the whole batch.

The two processes are started once per module (``spawned`` fixture); each writes what it computed to a
file and the tests compare that with a single-process reference computed here. A child's exception
fails the fixture (``ProcessContext.join`` re-raises it); a hang fails it after a deadline.
"""
import contextlib
import io
import re
import time
from argparse import Namespace
from collections import Counter
from datetime import timedelta

import pytest
import torch
import torch.distributed as dist
import torch.nn as nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from ila_tllib import ClassBalancedSampler, ClassifierPseudoLabeller, ILALoss
from ila_tllib import distributed as ddist
from ila_tllib.distributed import DistributedILALoss
from ila_tllib.engine.errors import UsageError
from ila_tllib.engine.loop import validate
from ila_tllib.engine.peers import PeerWatch, main_process_first

pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")

WORLD = 2
N_CLASSES, M, N_T, D_IN, D = 4, 4, 12, 6, 5
DEADLINE_S = 60


def make_global_batch(seed=0):
    """A class-balanced global source batch laid out as ClassBalancedSampler yields it, plus targets."""
    g = torch.Generator().manual_seed(seed)
    y_s = torch.randperm(N_CLASSES, generator=g).repeat_interleave(M)            # m samples per class, together
    centers = 2 * torch.randn(N_CLASSES, D, generator=g, dtype=torch.float64)
    y_t = torch.randint(0, N_CLASSES, (N_T,), generator=g)
    data = {
        "y_s": y_s,
        "f_s": centers[y_s] + torch.randn(len(y_s), D, generator=g, dtype=torch.float64),
        "f_t": centers[y_t] + 1.5 * torch.randn(N_T, D, generator=g, dtype=torch.float64),
        "logits_t": torch.randn(N_T, N_CLASSES, generator=g, dtype=torch.float64),
        # other features of the same samples (as a moving average's), which decide the pairs
        "g_s": centers[y_s] + torch.randn(len(y_s), D, generator=g, dtype=torch.float64),
        "g_t": centers[y_t] + 1.5 * torch.randn(N_T, D, generator=g, dtype=torch.float64),
        "x_s": torch.randn(len(y_s), D_IN, generator=g, dtype=torch.float64),
        "x_t": torch.randn(N_T, D_IN, generator=g, dtype=torch.float64),
        "weight": torch.randn(D, D_IN, generator=g, dtype=torch.float64),
        "bias": torch.randn(D, generator=g, dtype=torch.float64),
    }
    return data


def evaluation_data():
    """20 images of 3 classes and a fixed linear classifier, for the sharded per-class evaluation."""
    g = torch.Generator().manual_seed(5)
    images, labels = torch.randn(20, D_IN, generator=g), torch.randint(0, 3, (20,), generator=g)
    model = nn.Linear(D_IN, 3)
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, D_IN, generator=g))
        model.bias.zero_()
    return images, labels, model


def local_rows(t, r):
    n = t.shape[0] // WORLD
    return t[r * n:(r + 1) * n]


def make_model(data):
    model = nn.Linear(D_IN, D).double()
    with torch.no_grad():
        model.weight.copy_(data["weight"])
        model.bias.copy_(data["bias"])
    return model


def new_ila():
    return ILALoss(k=3, mu=0.67)


def _worker(r, init_file, out_dir):
    torch.set_num_threads(1)
    data = make_global_batch()    # built here, not sent: no tensor crosses the process boundary
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=r, world_size=WORLD,
                            timeout=timedelta(seconds=30))
    try:
        out = {"world_size": ddist.world_size(), "rank": ddist.rank(), "is_distributed": ddist.is_distributed(),
               "is_main": ddist.is_main_process()}
        y_s = local_rows(data["y_s"], r)

        # 1. the global loss and the gradient of the local rows, plain (ddp_average=False)
        f_s = local_rows(data["f_s"], r).clone().requires_grad_()
        f_t = local_rows(data["f_t"], r).clone().requires_grad_()
        loss_fn = DistributedILALoss(new_ila(), ddp_average=False)
        loss = loss_fn(f_s, y_s, f_t)
        loss.backward()
        out.update(loss=loss.item(), grad_f_s=f_s.grad, grad_f_t=f_t.grad, pseudo_labels=loss_fn.pseudo_labels,
                   ratio=loss_fn.ratio, kept=loss_fn.kept, affinity=loss_fn.affinity,
                   num_anchors=loss_fn.num_anchors)

        # 2. the logits are gathered too (classifier pseudo-labeller)
        loss_fn = DistributedILALoss(ILALoss(mu=0.67, pseudo_labeller=ClassifierPseudoLabeller()), ddp_average=False)
        out["loss_classifier"] = loss_fn(local_rows(data["f_s"], r), y_s, local_rows(data["f_t"], r),
                                         logits_t=local_rows(data["logits_t"], r)).item()
        out["kept_classifier"] = loss_fn.kept

        # 2b. features that decide the pairs are gathered as well
        loss_fn = DistributedILALoss(new_ila(), ddp_average=False)
        f_s = local_rows(data["f_s"], r).clone().requires_grad_()
        loss = loss_fn(f_s, y_s, local_rows(data["f_t"], r),
                       mining_features=(local_rows(data["g_s"], r), local_rows(data["g_t"], r)))
        loss.backward()
        out.update(loss_mined=loss.item(), grad_f_s_mined=f_s.grad, affinity_mined=loss_fn.affinity)

        # 3. DDP averages the parameter gradients; ddp_average=True undoes it
        model = nn.parallel.DistributedDataParallel(make_model(data))
        x_s, x_t = local_rows(data["x_s"], r), local_rows(data["x_t"], r)
        features = model(torch.cat([x_s, x_t]))                                 # one forward per backward
        loss = DistributedILALoss(new_ila())(features[:len(x_s)], y_s, features[len(x_s):])
        loss.backward()
        out.update(ddp_loss=loss.item(), grad_weight=model.module.weight.grad,
                   grad_bias=model.module.bias.grad)

        # 4. sharded evaluation helpers; unequal shards are fine for reductions
        correct, count = [3, 5][r], [4, 7][r]
        out["accuracy"] = (ddist.reduce_sum(correct) / ddist.reduce_sum(torch.tensor(count))).item()
        out["mean"] = ddist.reduce_mean(torch.tensor(float(r + 1))).item()
        out["gathered_labels"] = ddist.all_gather_no_grad(y_s)

        # 5. unequal target batches: every rank raises a clear error instead of hanging
        try:
            DistributedILALoss(new_ila())(local_rows(data["f_s"], r), y_s, local_rows(data["f_t"], r)[:6 - r])
            out["size_error"] = None
        except ValueError as e:
            out["size_error"] = str(e)

        # 6. process 0 acts first (a download, an export), the others once it succeeded; its error stops all
        written = out_dir / "written_by_process_0"

        def write_or_read():
            if r == 0:
                time.sleep(0.5)   # a process 1 that did not wait would find nothing written yet
                written.write_text("done")
            return written.exists()

        out["found_process_0s_file"] = main_process_first(write_or_read, None, "write")
        calls = []

        def fail_in_process_0():
            calls.append(r)
            if r == 0:
                raise UsageError("ROOT is missing")

        try:
            main_process_first(fail_in_process_0, None, "prepare the datasets")
            out["first_error"] = None
        except UsageError as e:
            out["first_error"] = str(e)
        out["first_calls"] = calls

        # 7. the per-class table of an evaluation counts every process's shard
        images, labels, model = evaluation_data()
        shard = DataLoader(Subset(TensorDataset(images, labels), range(r, len(labels), WORLD)), batch_size=4)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            validate(shard, model, Namespace(per_class_eval=True, print_freq=100), torch.device("cpu"),
                     ["a", "b", "c"])
        out["per_class_table"] = printed.getvalue()

        # 8. the resume state: every process goes on with the BatchNorm statistics process 0 saves (each
        # process updates its own, e.g. in the average ILA mines on with --ila-mining-average network-eval)
        from ila_tllib.engine.resume import save_resume_state
        statistics = nn.BatchNorm1d(3)
        statistics.running_mean.fill_(float(r + 1))
        model = nn.Linear(2, 2)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        args = Namespace(log=str(out_dir / "log"), epochs=1)
        (out_dir / "log" / "checkpoints").mkdir(parents=True, exist_ok=True)
        plan = Namespace(balanced_source=False, ila_batch=None)
        from ila_tllib.memory import SourceFeatureBank      # not filled yet: its empty buffers are left alone
        save_resume_state(args, Namespace(name="dann"), plan, 0, 0.0, {"iter": 1, "num_classes": 2, "data_seed": 0},
                          {"classifier": model, "ila_mining_network": statistics, "ila_loss": SourceFeatureBank(2)},
                          optimizer,
                          torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0), {})
        out["running_mean_after_save"] = statistics.running_mean.clone()

        torch.save(out, out_dir / f"rank{r}.pt")
        # no rank tears the group down while another still uses it: without this, a rank that exits
        # early can abort its peer's gloo threads (SIGABRT at exit, a few runs in ten)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def run_workers(worker, *args):
    """``worker(rank, *args)`` in WORLD spawned processes, until all end; a child's exception re-raises here,
    a hang fails the test after DEADLINE_S."""
    ctx = torch.multiprocessing.start_processes(worker, args=args, nprocs=WORLD, join=False, start_method="spawn")
    deadline = time.monotonic() + DEADLINE_S
    while not ctx.join(timeout=1):            # re-raises a child's exception
        if time.monotonic() > deadline:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
            pytest.fail(f"distributed workers did not finish within {DEADLINE_S} s")


@pytest.fixture(scope="module")
def spawned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    data = make_global_batch()
    run_workers(_worker, tmp / "init", tmp)
    return data, [torch.load(tmp / f"rank{r}.pt") for r in range(WORLD)]


def reference(data):
    """One process, the whole batch, plain ILALoss."""
    f_s = data["f_s"].clone().requires_grad_()
    f_t = data["f_t"].clone().requires_grad_()
    ila = new_ila()
    loss = ila(f_s, data["y_s"], f_t)
    loss.backward()
    return ila, loss.item(), f_s.grad, f_t.grad


def test_helpers_report_the_process_group(spawned):
    _, results = spawned
    for r, out in enumerate(results):
        assert (out["world_size"], out["rank"], out["is_distributed"], out["is_main"]) == (WORLD, r, True, r == 0)
        assert out["accuracy"] == pytest.approx(8 / 11)
        assert out["mean"] == pytest.approx(1.5)


def test_every_rank_computes_the_single_process_loss_and_row_gradients(spawned):
    data, results = spawned
    ila, ref_loss, ref_gs, ref_gt = reference(data)
    assert ila.num_anchors > 0 and not ila.kept.all()           # the batch exercises the μ filter
    for r, out in enumerate(results):
        assert out["loss"] == pytest.approx(ref_loss, rel=1e-12, abs=1e-12)
        torch.testing.assert_close(out["grad_f_s"], local_rows(ref_gs, r), rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(out["grad_f_t"], local_rows(ref_gt, r), rtol=1e-9, atol=1e-12)
        # the decisions are those of the global batch
        assert torch.equal(out["pseudo_labels"], ila.pseudo_labels)
        assert torch.equal(out["kept"], ila.kept)
        assert torch.equal(out["affinity"], ila.affinity)
        torch.testing.assert_close(out["ratio"], ila.ratio)
        assert out["num_anchors"] == ila.num_anchors
        assert torch.equal(out["gathered_labels"], data["y_s"])


def test_target_logits_are_gathered(spawned):
    data, results = spawned
    ila = ILALoss(mu=0.67, pseudo_labeller=ClassifierPseudoLabeller())
    ref = ila(data["f_s"], data["y_s"], data["f_t"], logits_t=data["logits_t"]).item()
    for out in results:
        assert out["loss_classifier"] == pytest.approx(ref, rel=1e-12, abs=1e-12)
        assert torch.equal(out["kept_classifier"], ila.kept)


def test_mining_features_are_gathered(spawned):
    data, results = spawned
    ila = new_ila()
    f_s = data["f_s"].clone().requires_grad_()
    loss = ila(f_s, data["y_s"], data["f_t"], mining_features=(data["g_s"], data["g_t"]))
    loss.backward()
    assert not torch.equal(ila.affinity, reference(data)[0].affinity)   # the other features decide otherwise
    for r, out in enumerate(results):
        assert out["loss_mined"] == pytest.approx(loss.item(), rel=1e-12, abs=1e-12)
        assert torch.equal(out["affinity_mined"], ila.affinity)
        torch.testing.assert_close(out["grad_f_s_mined"], local_rows(f_s.grad, r), rtol=1e-9, atol=1e-12)


def test_ddp_parameter_gradients_match_one_process(spawned):
    data, results = spawned
    model = make_model(data)
    features = model(torch.cat([data["x_s"], data["x_t"]]))
    n_s = len(data["y_s"])
    loss = new_ila()(features[:n_s], data["y_s"], features[n_s:])
    loss.backward()
    for out in results:
        assert out["ddp_loss"] == pytest.approx(loss.item(), rel=1e-12)   # the value is not scaled
        torch.testing.assert_close(out["grad_weight"], model.weight.grad, rtol=1e-9, atol=1e-12)
        torch.testing.assert_close(out["grad_bias"], model.bias.grad, rtol=1e-9, atol=1e-12)


def test_unequal_batches_raise_on_every_rank(spawned):
    _, results = spawned
    for out in results:
        assert out["size_error"] is not None and "same shape on every rank" in out["size_error"]
        assert "[(6, 5), (5, 5)]" in out["size_error"]


def test_process_0_prepares_first_and_its_error_stops_the_others(spawned):
    _, results = spawned
    for r, out in enumerate(results):
        assert out["found_process_0s_file"]
        assert out["first_calls"] == ([0] if r == 0 else [])
        assert out["first_error"] == ("ROOT is missing" if r == 0 else
                                      "process 0 could not prepare the datasets (see its message)")


def per_class_readings(images, labels, model):
    """Overall and mean per-class accuracy (%) over the given images, by a plain loop."""
    with torch.no_grad():
        predicted = model(images).argmax(1)
    right = {c: [] for c in range(3)}
    for p, y in zip(predicted.tolist(), labels.tolist()):
        right[y].append(p == y)
    overall = 100 * sum(sum(v) for v in right.values()) / len(labels)
    return overall, 100 * sum(sum(v) / len(v) for v in right.values()) / 3


def test_per_class_evaluation_counts_every_shard(spawned):
    _, results = spawned
    images, labels, model = evaluation_data()
    overall, mean = per_class_readings(images, labels, model)
    assert (overall, mean) != per_class_readings(images[::WORLD], labels[::WORLD], model)  # process 0's alone
    table = results[0]["per_class_table"]   # process 0 prints what the log holds
    assert re.search(rf"^global correct: {overall:.1f}\nmean correct:{mean:.1f}$", table, re.M), table


def test_every_process_goes_on_with_the_state_process_0_saves(spawned, tmp_path):
    _, results = spawned
    # process 0 had statistics of 1, process 1 of 2: both hold process 0's after the save, as a resume would
    assert [results[r]["running_mean_after_save"].tolist() for r in range(WORLD)] == [[1.0] * 3] * WORLD


def _slow_preparation_worker(r, init_file, store_file, out_dir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=r, world_size=WORLD,
                            timeout=timedelta(seconds=1))
    watch = PeerWatch(dist.FileStore(str(store_file), WORLD), r)
    try:
        def prepare():
            if r == 0:
                time.sleep(3)   # a download longer than the process group's timeout
            return r
        torch.save(main_process_first(prepare, watch, "prepare the datasets"), out_dir / f"prepared{r}.pt")
        dist.barrier()
    finally:
        watch.close()
        dist.destroy_process_group()


def test_the_others_outwait_a_preparation_longer_than_the_group_timeout(tmp_path):
    # they wait on the watch's store, not in a collective, which would end after the group's 1 s
    run_workers(_slow_preparation_worker, tmp_path / "init", tmp_path / "store", tmp_path)
    assert [torch.load(tmp_path / f"prepared{r}.pt") for r in range(WORLD)] == list(range(WORLD))


def test_single_process_is_the_plain_loss():
    assert not dist.is_initialized()
    assert (ddist.world_size(), ddist.rank(), ddist.is_distributed(), ddist.is_main_process()) == (1, 0, False, True)
    data = make_global_batch(seed=1)
    f_s = data["f_s"].clone().requires_grad_()
    wrapped = DistributedILALoss(new_ila())
    loss = wrapped(f_s, data["y_s"], data["f_t"])
    loss.backward()
    ila, ref_loss, ref_gs, _ = reference(data)
    assert loss.item() == ref_loss
    assert torch.equal(f_s.grad, ref_gs)
    assert torch.equal(wrapped.kept, ila.kept) and wrapped.num_anchors == ila.num_anchors
    assert ddist.gather_with_grad(f_s) is f_s
    assert torch.equal(ddist.all_gather_no_grad(data["y_s"]), data["y_s"])
    assert ddist.reduce_sum(3).item() == 3 and ddist.reduce_mean(torch.tensor(2.0)).item() == 2.0


@pytest.mark.parametrize("classes_per_batch", [None, 2])
def test_sampler_ranks_split_a_class_balanced_global_batch(classes_per_batch):
    labels = [c for c in range(4) for _ in range(10)]        # 4 classes x 10 samples
    m = 5
    ranks = [ClassBalancedSampler(labels, m, classes_per_batch, seed=3, num_replicas=WORLD, rank=r)
             for r in range(WORLD)]
    single = ClassBalancedSampler(labels, m, classes_per_batch, seed=3)
    per_rank = [list(s) for s in ranks]
    assert len(per_rank[0]) == len(per_rank[1]) == len(single)
    for b0, b1, whole in zip(*per_rank, single):
        assert len(b0) == len(b1) == len(whole) // WORLD
        assert b0 == whole[0::2] and b1 == whole[1::2]         # interleaved shares of the global batch
        counts = Counter(labels[i] for i in b0 + b1)
        assert len(set(counts.values())) == 1 and set(counts.values()) == {m}
        assert len(counts) == (classes_per_batch or 4)
        assert not set(b0) & set(b1)                           # the ranks never share a sample of a batch
    if classes_per_batch is None:                              # every class drawn exactly its size per pass:
        seen0 = [i for b in per_rank[0] for i in b]            # no sample repeats, on one rank or across ranks
        seen1 = [i for b in per_rank[1] for i in b]
        assert not set(seen0) & set(seen1)
        assert len(set(seen0 + seen1)) == len(seen0 + seen1) == len(labels)


@pytest.mark.parametrize("rank, said", [(0, "interrupted: resume.pth holds the last finished epoch\n"), (1, "")])
def test_another_process_s_ctrl_c_is_reported_as_an_interrupt_not_an_error(tmp_path, rank, said):
    # a terminal's Ctrl-C reaches every process; when process 1 took it first, process 0's watch ended the
    # run with "error: process 1 stopped: interrupted" and without the line that says what --resume continues
    import subprocess
    import sys
    import textwrap
    script = textwrap.dedent(f"""
        import sys, time
        import torch.distributed as dist
        from ila_tllib.engine.peers import PeerWatch
        watching = PeerWatch(dist.FileStore(sys.argv[1], 2), {rank})
        if {rank} == 0:
            watching.describe_interrupt = lambda: "interrupted: resume.pth holds the last finished epoch"
        PeerWatch(dist.FileStore(sys.argv[1], 2), {1 - rank}).stopping(130, "interrupted")
        time.sleep(30)
    """)
    done = subprocess.run([sys.executable, "-c", script, str(tmp_path / "store")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 130 and done.stderr == said, done.stderr
