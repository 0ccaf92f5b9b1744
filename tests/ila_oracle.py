"""A plain-Python restatement of ILA-DA's Eq. 4-7 (loops over lists of floats), the tests' oracle."""
import math
from collections import Counter
from fractions import Fraction


def phi(a, b):
    return 1.0 / (1.0 + math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b))))


def cosine_phi(a, b):
    """The cosine similarity rescaled to [0, 1]: (1 + cos) / 2."""
    dot = sum(x * y for x, y in zip(a, b))
    return 0.5 * (1.0 + dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))))


#: the scripts' --similarity -> the oracle's similarity
PHI = {"inverse_euclidean": phi, "cosine": cosine_phi}


def ila_oracle(f_s, y_s, f_t, k, mu, m=None, temperature=1.0, remembered=((), ()), matched=False,
               contrast_remembered=False, decide_phi=phi, contrast_phi=phi):
    """Returns (loss, pseudo_labels, gammas, kept set, affinity rows) for lists of feature lists.

    ``matched``: Γ sums as many unlike similarities as it has like ones (at most m each).

    ``decide_phi``: the similarity of the kNN vote and Γ; ``contrast_phi`` the one the loss contrasts with.

    ``remembered`` = (features, labels) of extra sources that only vote (a source bank): the kNN vote and
    Γ read them after the batch's sources; the affinity rows and the loss cover the batch's sources only,
    or, with ``contrast_remembered``, the remembered ones too (after the batch's).
    """
    n_batch = len(f_s) + (len(remembered[0]) if contrast_remembered else 0)
    f_s, y_s = list(f_s) + list(remembered[0]), list(y_s) + list(remembered[1])
    n_s, n_t = len(f_s), len(f_t)
    sim = [[decide_phi(f_s[i], f_t[j]) for j in range(n_t)] for i in range(n_s)]
    loss_sim = [[contrast_phi(f_s[i], f_t[j]) for j in range(n_t)] for i in range(n_s)]
    if m is None:
        m = max(Counter(y_s).values())
    labels, gammas = [], []
    for j in range(n_t):
        nearest = sorted(range(n_s), key=lambda i: -sim[i][j])[:k]
        votes = Counter(y_s[i] for i in nearest)
        top = max(votes.values())
        label = min(c for c, v in votes.items() if v == top)
        like = sorted((sim[i][j] for i in range(n_s) if y_s[i] == label), reverse=True)[:m]
        unlike = sorted((sim[i][j] for i in range(n_s) if y_s[i] != label), reverse=True)
        unlike = unlike[:len(like)] if matched else unlike[:m]
        labels.append(label)
        gammas.append(0.0 if not like else sum(like) / sum(unlike) if unlike else math.inf)
    n_keep = math.floor(Fraction(str(mu)) * n_t + Fraction(1, 2))   # mu as written, half up, exactly
    kept = set(sorted(range(n_t), key=lambda j: -gammas[j])[:n_keep])
    affinity = [[(1 if y_s[i] == labels[j] else -1) if j in kept else 0 for j in range(n_t)]
                for i in range(n_batch)]
    per_source = []
    for i in range(n_batch):
        pos = [j for j in range(n_t) if affinity[i][j] == 1]
        neg = [j for j in range(n_t) if affinity[i][j] == -1]
        if pos and neg:
            num = sum(math.exp(loss_sim[i][j] / temperature) for j in pos)
            den = num + sum(math.exp(loss_sim[i][j] / temperature) for j in neg)
            per_source.append(-math.log(num / den))
    loss = sum(per_source) / len(per_source) if per_source else 0.0
    return loss, labels, gammas, kept, affinity


def ila_oracle_gradient(f_s, y_s, f_t, k, mu, m=None, temperature=1.0):
    """The loss and its gradients (lists like f_s and f_t), from the analytic derivative, in loops.

    With the selection fixed by the forward pass (it carries no gradient), for anchors i in I:
        dL/dphi_ij = (exp(phi_ij/T) / den_i * [j in P_i or N_i] - exp(phi_ij/T) / num_i * [j in P_i]) / (T |I|)
        phi = 1 / (1 + d), dphi/dd = -phi^2,  dd/df_s[i] = (f_s[i] - f_t[j]) / d = -dd/df_t[j]
    (0 where d = 0, as the library does).
    """
    loss, _, _, _, affinity = ila_oracle(f_s, y_s, f_t, k, mu, m, temperature)
    n_s, n_t, dim = len(f_s), len(f_t), len(f_s[0])
    grad_s = [[0.0] * dim for _ in range(n_s)]
    grad_t = [[0.0] * dim for _ in range(n_t)]
    anchors = [i for i in range(n_s) if 1 in affinity[i] and -1 in affinity[i]]
    for i in anchors:
        sim = [phi(f_s[i], f_t[j]) for j in range(n_t)]
        weight = [math.exp(s / temperature) for s in sim]
        num = sum(weight[j] for j in range(n_t) if affinity[i][j] == 1)
        den = sum(weight[j] for j in range(n_t) if affinity[i][j] != 0)
        for j in range(n_t):
            if affinity[i][j] == 0:
                continue
            d_phi = (weight[j] / den - (weight[j] / num if affinity[i][j] == 1 else 0.0))
            d_phi /= temperature * len(anchors)
            distance = 1.0 / sim[j] - 1.0
            if distance == 0.0:
                continue
            d_distance = -d_phi * sim[j] ** 2
            for c in range(dim):
                step = d_distance * (f_s[i][c] - f_t[j][c]) / distance
                grad_s[i][c] += step
                grad_t[j][c] -= step
    return loss, grad_s, grad_t
