"""benchmarks/knn_vote_probe.py: its vote on a hand-built case, and the script as a user runs it."""
import math
import os
import re
import shutil
import subprocess
import sys

import torch

from helpers import DIGIT_FLAGS, REPO, load_benchmark, run_script, script_env

SCRIPT = os.path.join(REPO, "benchmarks", "knn_vote_probe.py")


def test_short_targets_vote_for_the_shortest_sources_on_distance_and_right_on_the_angle():
    # three classes along the three axes; class 0's sources are ten times as long as the others', every target
    # has length 1. A class-0 target is sqrt(2) from the sources of classes 1 and 2 and 9 from its own: the
    # Euclidean vote gets those 4 targets of 12 wrong; the angle gets all of them right
    eye = torch.eye(3, dtype=torch.float64)
    f_s = torch.cat([eye[[0, 0]] * 10, eye[[1, 1]], eye[[2, 2]]])
    y_s = torch.tensor([0, 0, 1, 1, 2, 2])
    f_t = eye[[0, 1, 2] * 4]
    y_t = torch.tensor([0, 1, 2] * 4)
    probe = load_benchmark("knn_vote_probe")
    for similarity, expected in (("inverse_euclidean", 100 * 8 / 12), ("cosine", 100.0)):
        every, kept = probe.vote_accuracy(f_s, y_s, f_t, y_t, similarity, k=1, mu=1.0, samples_per_class=2,
                                          targets=12, batches=3, generator=torch.Generator().manual_seed(0))
        assert abs(every - expected) < 1e-4 and abs(kept - expected) < 1e-4


def test_label_free_readings_on_a_hand_built_case():
    # the three axes again, every feature of length 1: on the angle (1 + cos) / 2 a source of the target's own
    # class scores 1 and any other 0.5, so the 1-NN vote is right, and Γ = 1 / 0.5 = 2 whatever m sums. Targets
    # 0, 0, 1, 2 three times: pseudo-label shares 1/2, 1/4, 1/4. The classifier predicts class 0 for every
    # class-2 target (wrong, so 9 of 12 agree) with a logit log 2 over two zeros: confidence 2 / (2 + 1 + 1)
    eye = torch.eye(3, dtype=torch.float64)
    f_s, y_s = eye[[0, 0, 1, 1, 2, 2]], torch.tensor([0, 0, 1, 1, 2, 2])
    y_t = torch.tensor([0, 0, 1, 2] * 3)
    f_t = eye[y_t]
    logits_t = eye[torch.where(y_t == 2, 0, y_t)] * math.log(2)
    agree, ratio, confidence, entropy = load_benchmark("knn_vote_probe").label_free(
        f_s, y_s, f_t, logits_t, "cosine", k=1, mu=1.0, samples_per_class=2, targets=12, batches=3,
        generator=torch.Generator().manual_seed(0))
    expected_entropy = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3)
    assert abs(agree - 75.0) < 1e-4 and abs(ratio - 2.0) < 1e-6
    assert abs(confidence - 50.0) < 1e-4 and abs(entropy - expected_entropy) < 1e-6


def test_mutual_nearest_neighbours_against_a_plain_loop():
    probe = load_benchmark("knn_vote_probe")
    g = torch.Generator().manual_seed(3)
    seen = set()
    for n_s, n_t, k in ((6, 9, 1), (8, 5, 2), (12, 16, 3)):
        similarity = torch.rand(n_s, n_t, generator=g, dtype=torch.float64)
        y_s, pseudo_labels = torch.randint(0, 3, (n_s,), generator=g), torch.randint(0, 3, (n_t,), generator=g)
        expected = []
        for t in range(n_t):
            sources = sorted(range(n_s), key=lambda s: -similarity[s, t].item())[:k]
            expected.append(any(y_s[s] == pseudo_labels[t] and
                                t in sorted(range(n_t), key=lambda u: -similarity[s, u].item())[:k]
                                for s in sources))
        assert probe.mutual_kept(similarity, y_s, pseudo_labels, k).tolist() == expected
        seen.update(expected)
    assert seen == {True, False}


def test_target_neighbour_purity_against_a_plain_loop():
    probe = load_benchmark("knn_vote_probe")
    g = torch.Generator().manual_seed(5)
    for n, k in ((7, 1), (12, 3), (20, 5)):
        similarity = torch.rand(n, n, generator=g, dtype=torch.float64)
        y = torch.randint(0, 3, (n,), generator=g)
        shares, chances = [], []
        for t in range(n):
            others = sorted((u for u in range(n) if u != t), key=lambda u: -similarity[t, u].item())
            shares.append(sum(int(y[u] == y[t]) for u in others[:k]) / k)
            chances.append(sum(int(y[u] == y[t]) for u in others) / (n - 1))
        purity, chance = probe.neighbour_purity(similarity, y, k)
        assert abs(purity - sum(shares) / n) < 1e-6 and abs(chance - sum(chances) / n) < 1e-6


def test_propagated_vote_against_a_plain_loop():
    probe = load_benchmark("knn_vote_probe")
    g = torch.Generator().manual_seed(7)
    changed = 0
    for n_s, n_t, k, steps in ((6, 9, 1, 1), (8, 12, 2, 1), (12, 16, 3, 3), (10, 20, 3, 0)):
        s_ts = torch.rand(n_t, n_s, generator=g, dtype=torch.float64)
        s_tt = torch.rand(n_t, n_t, generator=g, dtype=torch.float64)
        y_s = torch.randint(0, 3, (n_s,), generator=g)
        votes = [[0.0] * 3 for _ in range(n_t)]
        for t in range(n_t):
            for s in sorted(range(n_s), key=lambda s: -s_ts[t, s].item())[:k]:
                votes[t][y_s[s]] += 1
        neighbours = [sorted((u for u in range(n_t) if u != t), key=lambda u: -s_tt[t, u].item())[:k]
                      for t in range(n_t)]
        scores = [row[:] for row in votes]
        for _ in range(steps):
            scores = [[votes[t][c] + sum(scores[u][c] for u in neighbours[t]) for c in range(3)] for t in range(n_t)]
        expected = []
        for t in range(n_t):
            best = max(scores[t])
            own = max(range(3), key=lambda c: (votes[t][c], -c))          # the vote's label, ties to the smallest
            expected.append(own if scores[t][own] == best else scores[t].index(best))
        labels = probe.propagated_labels(s_ts.float(), s_tt.float(), y_s, k, 3, steps).tolist()
        assert labels == expected
        changed += sum(a != b for a, b in zip(expected, (max(range(3), key=lambda c: (v[c], -c)) for v in votes)))
    assert changed > 0      # the graph moved some labels off the target's own vote


def test_on_a_finished_run_and_on_a_folder_without_one(offline_digits, tmp_path):
    log = tmp_path / "run"
    done = run_script("ila_dann.py", [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS,
                                      "-b", "16", "--epochs", "1", "-i", "3", "-p", "3", "--samples-per-class", "2",
                                      "--k", "2", "--mu", "0.5", "--seed", "0", "--log", log])
    assert done.returncode == 0, done.stderr[-2000:]
    # a refused --resume writes a newer, unfinished log into the folder: the probe reads the finished one
    refused = run_script("ila_dann.py", [offline_digits, "-d", "ImageList", "-s", "mnist", "-t", "uci", *DIGIT_FLAGS,
                                         "-b", "16", "--epochs", "1", "-i", "3", "-p", "3", "--seed", "1", "--resume",
                                         "--log", log])
    assert refused.returncode == 2 and len(list(log.glob("train-*.txt"))) == 2, refused.stderr[-2000:]
    done = subprocess.run([sys.executable, SCRIPT, str(log), "--samples", "60", "--batches", "3", "--label-free",
                           "--mutual", "--mu", "1", "--target-neighbours", "--propagated"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    row = re.search(r"^\| ILA-DA\+DANN \| M→U \| 1 \| ([\d.]+) \| ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) \| "
                    r"([\d.]+) / ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) / ([\d.]+|nan) \| "
                    r"([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) / ([\d.]+) \| ([\d.]+) / ([\d.]+) / ([\d.]+) \|$",
                    done.stdout, re.M)
    assert row, done.stdout
    values = [float(v) for v in row.groups()]
    assert all(0 <= v <= 100 for v in values[:1] + values[3:7]) and values[1] > 0 and values[2] > 0
    assert values[3] == values[4] and values[5] == values[6]   # --mu 1 (not the log's 0.5) keeps every target
    agree, ratio, confidence, entropy, mutual_share, mutual_right, neighbours, chance = values[7:15]
    in_batch, in_pool = values[15:18], values[18:]
    assert all(0 <= v <= 100 for v in in_batch + in_pool)
    assert in_batch[0] == values[5]     # no step of the graph: the plain vote on the same batches
    assert 0 <= agree <= 100 and ratio > 0 and 10 <= confidence <= 100 and 0 <= entropy <= 1
    assert 0 < mutual_share <= 100 and 0 <= mutual_right <= 100
    assert 0 <= neighbours <= 100 and 0 < chance < 100
    done = subprocess.run([sys.executable, SCRIPT, str(tmp_path)], capture_output=True, text=True, cwd=REPO,
                          env=script_env(), timeout=120)
    assert done.returncode == 2 and "holds no finished training log" in done.stderr
    # a later training that finished an epoch but not its run (stopped) saved its weights over the finished
    # run's: they are not that run's. A copy of the folder, whose files all get new times, still passes
    copied = tmp_path / "copied"
    shutil.copytree(log, copied)
    done = subprocess.run([sys.executable, SCRIPT, str(copied), "--samples", "60", "--batches", "1"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    finished_log = next(path for path in sorted(log.glob("train-*.txt")) if "test_acc1" in path.read_text())
    stopped = log / "train-2999-01-01-00_00_00.txt"
    stopped.write_text(finished_log.read_text().split("best_acc1")[0])   # an epoch evaluated, then stopped
    done = subprocess.run([sys.executable, SCRIPT, str(log)], capture_output=True, text=True, cwd=REPO,
                          env=script_env(), timeout=120)
    assert done.returncode == 2 and f"holds the weights of a later, unfinished run in {log} ({stopped})" in \
        done.stderr, done.stderr
    # a --k beyond ILA's source batch (3 classes x 2 here), damaged weights, and a data root that holds other
    # data: one message each, exit 2 (tracebacks), and nothing written there (an offline-digits export was)
    done = subprocess.run([sys.executable, SCRIPT, str(copied), "--samples", "60", "--batches", "1", "--k", "50"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 2 and "--k 50 is more than ILA's source batch of" in done.stderr, done.stderr[-2000:]
    latest = copied / "checkpoints" / "latest.pth"
    latest.write_bytes(latest.read_bytes()[:1000])
    done = subprocess.run([sys.executable, SCRIPT, str(copied), "--samples", "60", "--batches", "1"],
                          capture_output=True, text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 2 and f"{latest} cannot be read" in done.stderr and "Traceback" not in done.stderr, \
        done.stderr[-2000:]
    empty = tmp_path / "empty_root"
    empty.mkdir()
    done = subprocess.run([sys.executable, SCRIPT, str(copied), "--data-root", str(empty)], capture_output=True,
                          text=True, cwd=REPO, env=script_env(), timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert list(empty.iterdir()) == []
