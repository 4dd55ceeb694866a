"""The damping paper: MSDNet / RANet on CIFAR-100, MSDNet on ImageNet.

Set-up: sec. 4 (`004_c3d7fba32766f10f.txt`): SGD with momentum 0.9, an
initial rate of 0.1 decaying with a cosine shape, 300 epochs at batch 64
on CIFAR (L834-L835), 100 epochs at batch 256 on ImageNet (L836);
normalisation, random crop and random flip (L827); λ = 0.005 on CIFAR-100
(L842) and 0.01 on ImageNet (L873); the dynamic weights' α = 0.8 on CIFAR
and 0.3 on ImageNet (L778); five seeds (C.4, L1557). Baselines: plain
MSDNet / RANet (joint cross-entropy), WPN (Han et al.'s meta-learned
weights, our `l2w` method) and DFS (Gong et al.'s MSDNet code, our
`dfs_reroute`). Tables 1, 2 and 6 are transcribed.
"""

from keras_eexit.recipes.recipe import Arm
from keras_eexit.recipes.recipe import PaperTable
from keras_eexit.recipes.recipe import Recipe
from keras_eexit.recipes.recipe import Smoke
from keras_eexit.recipes.recipe import ours
from keras_eexit.recipes.recipe import paper
from keras_eexit.recipes.registry import register

PAPER = "004_c3d7fba32766f10f.txt"
PM = "±"


def _pm(*cells):
    return tuple(c.replace(" ", f" {PM} ", 1) for c in cells)


TABLE_1 = PaperTable(
    table="Table 1", where=f"{PAPER}:L819-L823",
    metric="anytime accuracy (%), mean ± std over seeds",
    columns=tuple(f"exit_{k}" for k in range(1, 8)) + ("avg",),
    rows={
        "MSDNet": _pm("61.826 0.675", "64.922 0.620", "67.998 0.505",
                      "71.212 0.320", "73.600 0.595", "75.316 0.425",
                      "75.874 0.545", "70.107 0.144"),
        "WPN": _pm("62.344 0.315", "65.172 0.730", "68.246 0.570",
                   "71.232 0.710", "73.284 0.340", "74.702 0.390",
                   "74.934 0.860", "69.988 0.254"),
        "Damping": _pm("61.650 0.495", "64.908 0.330", "68.022 0.480",
                       "71.160 0.510", "73.592 0.480", "75.164 0.630",
                       "75.840 0.395", "70.048 0.196"),
        "+ Power-sqrt": _pm("62.094 0.295", "65.226 0.420", "68.448 0.405",
                            "71.654 0.460", "73.828 0.295", "75.494 0.375",
                            "76.012 0.470", "70.394 0.215"),
        "+ Dynamic": _pm("63.402 0.330", "66.276 0.345", "70.192 0.395",
                         "72.498 0.300", "74.654 0.490", "75.720 0.385",
                         "76.050 0.475", "71.256 0.149"),
    })

TABLE_2 = PaperTable(
    table="Table 2", where=f"{PAPER}:L884-L888",
    metric="anytime accuracy (%)",
    columns=tuple(f"exit_{k}" for k in range(1, 6)),
    rows={"MSDNet": (59.03, 66.49, 70.56, 72.39, 74.20),
          "WPN": (59.54, 67.22, 71.03, 72.33, 73.93),
          "DFS": (61.80, 68.03, 70.75, 71.79, 72.88),
          "Power-sqrt": (59.43, 67.12, 71.21, 72.91, 74.45),
          "+ Dynamic": (59.58, 67.46, 71.33, 73.19, 74.74)},
    note="one number per cell (no std given)")

TABLE_4 = PaperTable(
    table="Table 4", where=f"{PAPER}:L1451-L1454",
    metric="anytime accuracy (%)",
    columns=tuple(f"exit_{k}" for k in range(1, 8)),
    rows={"MSDNet": (88.51, 90.38, 92.15, 93.21, 93.89, 94.22, 94.54),
          "Meta-learning Early Exiting": (88.54, 90.19, 91.61, 92.55,
                                          93.28, 93.40, 93.67),
          "+ Power-sqrt": (88.38, 90.33, 92.06, 93.71, 94.23, 94.45,
                           94.49),
          "+ Dynamic training": (88.42, 90.21, 92.01, 93.58, 94.27, 94.50,
                                 94.55)},
    note="one number per cell; 'Meta-learning Early Exiting' is WPN")

TABLE_6 = PaperTable(
    table="Table 6", where=f"{PAPER}:L1519-L1522",
    metric="anytime accuracy (%)",
    columns=tuple(f"exit_{k}" for k in range(1, 7)),
    rows={"RANet": (65.28, 68.16, 70.52, 70.64, 72.39, 72.75),
          "WPN": (65.33, 68.69, 70.36, 70.80, 72.57, 72.45),
          "Ours": (65.63, 68.96, 71.49, 71.65, 73.19, 73.69),
          "+ Dynamic training": (65.67, 69.38, 71.88, 71.92, 74.19,
                                 74.26)},
    note="'Ours' read as power-sqrt (the paper's main loss); one number "
         "per cell")


def _arms(baseline, lam, alpha, dfs, power_label, dynamic_label,
          damping=True, wpn_row=None):
    arms = [Arm(baseline, "joint", {}),
            Arm("WPN", "joint", {}, method="l2w", paper_row=wpn_row)]
    if dfs:
        arms.append(Arm("DFS", "joint", {}, method="dfs_reroute"))
    if damping:
        arms.append(Arm("Damping", "joint", {"loss": "damping",
                                             "lam": lam}))
    arms += [
        Arm(power_label, "joint", {"loss": "power_sqrt", "lam": lam}),
        Arm(dynamic_label, "joint", {"loss": "power_sqrt", "lam": lam,
                                     "dynamic": alpha}),
    ]
    return tuple(arms)


def _sources(lam, lam_where, lam_text, alpha, alpha_text, imagenet=False):
    sources = {
        "optimizer.name": paper("sgd", f"{PAPER}:L834", "using SGD"),
        "optimizer.momentum": paper(0.9, f"{PAPER}:L835",
                                    "a momentum of 0.9"),
        "optimizer.learning_rate": paper(
            0.1, f"{PAPER}:L835", "an initial learning rate of 0.1"),
        "schedule.name": paper("cosine", f"{PAPER}:L835",
                               "decaying with a cosine shape"),
        "augmentation": paper("flip_crop", f"{PAPER}:L827",
                              "data normalization, random crop, and random "
                              "flip"),
        "seeds": paper(5, f"{PAPER}:L1557", "five runs"),
        "regimes.lam": paper(lam, lam_where, lam_text),
        "regimes.dynamic": paper(alpha, f"{PAPER}:L778", alpha_text),
        "optimizer.weight_decay": ours(
            0.0, "the paper gives none (Han et al.'s code uses 1e-4)"),
    }
    if imagenet:
        sources.update({
            "epochs": paper(100, f"{PAPER}:L836", "we train for 100 epochs"),
            "batch_size": paper(256, f"{PAPER}:L836",
                                "a batch size of 256"),
        })
    else:
        sources.update({
            "epochs": paper(300, f"{PAPER}:L834", "we train for 300 epochs"),
            "batch_size": paper(64, f"{PAPER}:L834", "a batch size of 64"),
        })
    return sources


_DEVIATIONS = (
    "no weight decay: the paper names none (Han et al.'s code, which it "
    "follows, uses 1e-4)",
    "random crop is a random translation by side/8 pixels with zero fill "
    "(keras_eexit.data 'flip_crop')",
    "10% of the training set is held out as a validation split (the paper "
    "trains on all 50,000 images; nothing is selected on it here)",
)

# The smoke scale runs the recipe's own architecture, narrowed (the
# reductions of the zoo's tests), with fewer exits.
_MSDNET_SMOKE = Smoke(model_params={"exits": 3, "channels": 4,
                                    "growth_rate": 2, "head_filters": 8})


def _msdnet_cifar100():
    return Recipe(
        name="damping_msdnet_cifar100",
        title="Damping paper: 7-exit MSDNet on CIFAR-100 (Table 1)",
        paper=PAPER, experiment="Table 1", dataset="cifar100",
        input_shape=(32, 32, 3), num_classes=100, model="msdnet_cifar",
        model_params={"exits": 7},
        arms=_arms("MSDNet", 0.005, 0.8, dfs=True,
                   power_label="+ Power-sqrt", dynamic_label="+ Dynamic"),
        optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        schedule={"name": "cosine"}, batch_size=64, epochs=300,
        seeds=(0, 1, 2, 3, 4), augmentation="flip_crop",
        evaluation="anytime",
        sources={**_sources(0.005, f"{PAPER}:L842",
                            "λ to 0.005 for CIFAR-100", 0.8,
                            "alpha = 0.8"),
                 "model_params.exits": paper(7, f"{PAPER}:L813",
                                             "a 7-exit MSDNet")},
        paper_tables=(TABLE_1,),
        deviations=_DEVIATIONS + (
            "DFS is trained here too; Table 1 has no DFS row",
        ),
        smoke=_MSDNET_SMOKE,
    )


def _msdnet_cifar10():
    return Recipe(
        name="damping_msdnet_cifar10",
        title="Damping paper: 7-exit MSDNet on CIFAR-10 (Table 4)",
        paper=PAPER, experiment="Table 4 (appendix C.1)",
        dataset="cifar10", input_shape=(32, 32, 3), num_classes=10,
        model="msdnet_cifar", model_params={"exits": 7},
        arms=_arms("MSDNet", 0.075, 0.8, dfs=False,
                   power_label="+ Power-sqrt",
                   dynamic_label="+ Dynamic training", damping=False,
                   wpn_row="Meta-learning Early Exiting"),
        optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        schedule={"name": "cosine"}, batch_size=64, epochs=300,
        seeds=(0, 1, 2, 3, 4), augmentation="flip_crop",
        evaluation="anytime",
        sources={**_sources(0.075, f"{PAPER}:L842", "and to 0.075", 0.8,
                            "alpha = 0.8"),
                 "model_params.exits": paper(7, f"{PAPER}:L1439",
                                             "a 7-exit MSDNet on CIFAR10")},
        paper_tables=(TABLE_4,),
        deviations=_DEVIATIONS + (
            "λ = 0.075 as sec. 4 states for CIFAR-10 (L842); appendix C.2 "
            "(L1433) keeps 0.005 for its damping-neuron analysis",
        ),
        smoke=_MSDNET_SMOKE,
    )


def _ranet_cifar100():
    return Recipe(
        name="damping_ranet_cifar100",
        title="Damping paper: 6-exit RANet on CIFAR-100 (Table 6)",
        paper=PAPER, experiment="Table 6 (appendix C.3)",
        dataset="cifar100", input_shape=(32, 32, 3), num_classes=100,
        model="ranet_cifar", model_params={"exits": 6},
        arms=_arms("RANet", 0.005, 0.8, dfs=False, power_label="Ours",
                   dynamic_label="+ Dynamic training", damping=False),
        optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        schedule={"name": "cosine"}, batch_size=64, epochs=300,
        seeds=(0, 1, 2, 3, 4), augmentation="flip_crop",
        evaluation="anytime",
        sources={**_sources(0.005, f"{PAPER}:L842",
                            "λ to 0.005 for CIFAR-100", 0.8,
                            "alpha = 0.8"),
                 "model_params.exits": paper(6, f"{PAPER}:L1511",
                                             "a 6-exit RANet")},
        paper_tables=(TABLE_6,),
        deviations=_DEVIATIONS + (
            "'Ours' is read as the power-sqrt loss (Table 6 does not say)",
        ),
        smoke=Smoke(model_params={
            "exits": 3, "channels": 4, "growth_rate": 4, "head_filters": 8,
            "base_blocks": 1, "block_step": 1, "step": 1,
            "step_mode": "even"}),
    )


def _msdnet_imagenet():
    return Recipe(
        name="damping_msdnet_imagenet",
        title="Damping paper: 5-exit MSDNet on ImageNet (Table 2)",
        paper=PAPER, experiment="Table 2", dataset="imagenet2012",
        input_shape=(224, 224, 3), num_classes=1000,
        model="msdnet_imagenet", model_params={},
        arms=_arms("MSDNet", 0.01, 0.3, dfs=True, power_label="Power-sqrt",
                   dynamic_label="+ Dynamic", damping=False),
        optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
        schedule={"name": "cosine"}, batch_size=256, epochs=100,
        seeds=(0,), augmentation="flip_crop", evaluation="anytime",
        sources={**_sources(0.01, f"{PAPER}:L873", "λ to 0.01", 0.3,
                            "alpha = 0.3", imagenet=True),
                 "seeds": ours(1, "Table 2 gives one number per cell")},
        paper_tables=(TABLE_2,),
        deviations=_DEVIATIONS + (
            "ImageNet augmentation is usually a random-resized crop; the "
            "paper says only 'random crop' and we translate by 28 pixels",
            "one seed: Table 2 reports no std"),
        smoke=Smoke(input_shape=(32, 32, 3), model_params={
            "exits": 2, "channels": 4, "growth_rate": 2, "head_filters": 8,
            "base": 1, "step": 1}),
    )


register(_msdnet_cifar100())
register(_msdnet_cifar10())
register(_ranet_cifar100())
register(_msdnet_imagenet())
