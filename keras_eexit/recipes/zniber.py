"""Zniber et al., sequential training with EWC / LwF (CIFAR-100).

Set-up: sec. 3.1 (`000_d012b46e4d6f325d.txt` L39): ResNet-34 with 8
classifiers at blocks {2, 4, ..., 16} (SDN pooling heads, the last one
average pooling) and the 7-block CIFAR MSDNet; a warm-up that pretrains
the backbone with the final exit only, then the exits added from shallow
to deep with EWC (λ) or LwF (ρ); batch 128 / lr 5·10⁻⁴ (ResNet-34) and
batch 512 / lr 10⁻³ (MSDNet), no weight decay, CutMix and MixUp, early
stopping with patience 50. The optimiser is not named ("following [11]",
Kubaty et al., whose code maps `"adam"` to AdamW): AdamW without weight
decay is our reading.

The text copy of the paper has Table 1's and Table 2's captions but not
their cells; the numbers it states in the text (L41, L45) are transcribed.
The baselines (disjoint, branch-wise, separate, joint) are "taken from
[11]" (L39); we train them under the same set-up.
"""

from keras_eexit.recipes.recipe import Arm
from keras_eexit.recipes.recipe import PaperTable
from keras_eexit.recipes.recipe import Recipe
from keras_eexit.recipes.recipe import Smoke
from keras_eexit.recipes.recipe import code
from keras_eexit.recipes.recipe import ours
from keras_eexit.recipes.recipe import paper
from keras_eexit.recipes.registry import register

PAPER = "000_d012b46e4d6f325d.txt"

DELTAS = PaperTable(
    table="Table 1 (stated in the text)", where=f"{PAPER}:L41",
    metric="accuracy gain over separate training at the 25% budget (points)",
    columns=("25%",),
    rows={"EWC − separate": ("+4.25",), "LwF − separate": ("+4.46",)},
    note="the cells of Table 1 are not in the text copy of the paper")


def _arms(lam, rho, ablation):
    arms = [
        Arm("separate", "sequential", {}),
        Arm("EWC", "sequential", {"regularizer": "ewc", "lam": lam}),
        Arm("LwF", "sequential", {"regularizer": "lwf", "rho": rho}),
        # CutMix / MixUp batches differ every epoch: no feature cache.
        Arm("disjoint", "two_stage", {"cache_features": False}),
        Arm("branch-wise", "branch_wise", {}),
        Arm("joint", "joint", {}),
    ]
    if ablation:
        arms += [
            Arm("EWC, no warm-up", "sequential",
                {"regularizer": "ewc", "lam": lam, "warmup_epochs": 0}),
            Arm("LwF, no warm-up", "sequential",
                {"regularizer": "lwf", "rho": rho, "warmup_epochs": 0}),
            Arm("EWC λ=10", "sequential",
                {"regularizer": "ewc", "lam": 10.0}),
        ]
    return tuple(arms)


def _sources(batch, rate_text, rate, lam_text, lam, rho_text, rho):
    return {
        "dataset": paper("cifar100", f"{PAPER}:L39",
                         "We conduct experiments on CIFAR\\-100"),
        "batch_size": paper(batch, f"{PAPER}:L39", f"batch size of {batch}"),
        "optimizer.learning_rate": paper(rate, f"{PAPER}:L39", rate_text),
        "optimizer.weight_decay": paper(0.0, f"{PAPER}:L39",
                                        "no weight decay"),
        "optimizer.name": code("adamw", "kamadforge/early-exit-benchmark/"
                               "common.py ('adam' is AdamW); the paper "
                               "says 'following [11]' (L39)"),
        "augmentation": paper(["cutmix", "mixup"], f"{PAPER}:L39",
                              "CutMix and Mixup"),
        "early_stopping.patience": paper(50, f"{PAPER}:L39",
                                         "patience of 50 epochs"),
        "regimes.lam": paper(lam, f"{PAPER}:L39", lam_text),
        "regimes.rho": paper(rho, f"{PAPER}:L39", rho_text),
        "warmup": paper("final exit only", f"{PAPER}:L39",
                        "pretrain each backbone network with only the "
                        "final exit"),
        "epochs": ours(1000, "the paper gives no epoch cap; early "
                       "stopping ends every stage"),
        "seeds": ours((0, 1, 2), "the paper does not say how many seeds"),
        "evaluation": paper("budget", f"{PAPER}:L41",
                            "25%25\\%,50%50\\%,75%75\\%, and100%100\\%FLOPs"),
    }


_DEVIATIONS = (
    "the optimiser is not named in the paper; AdamW without weight decay "
    "(Kubaty et al.'s code for 'adam') is our reading",
    "the paper takes the baselines' numbers from Kubaty et al.; we train "
    "them under this recipe's set-up",
    "the cells of Table 1 and Table 2 are not in the text copy: only the "
    "gains stated at L41 are compared",
    "validation split of 10% held out of the training set for early "
    "stopping (the paper does not say which data early stopping watches)",
)


def _resnet34():
    return Recipe(
        name="zniber_resnet34_cifar100",
        title="Zniber et al.: sequential / EWC / LwF, ResNet-34 with 8 ICs "
              "on CIFAR-100",
        paper=PAPER, experiment="Table 1 (ResNet-34 rows)",
        dataset="cifar100", input_shape=(32, 32, 3), num_classes=100,
        model="cifar_resnet",
        model_params={"depth": 34, "exits": [2, 4, 6, 8, 10, 12, 14],
                      "head": "sdn_pool"},
        arms=_arms(100.0, 0.7, ablation=False),
        optimizer={"name": "adamw", "learning_rate": 5e-4,
                   "weight_decay": 0.0},
        batch_size=128, epochs=1000, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 50},
        augmentation=["cutmix", "mixup"],
        sources={**_sources(128, "a learning rate of5⋅10−4", 5e-4,
                            "we setλ=100", 100.0, "andρ=0.7", 0.7),
                 "model_params.exits": paper(
                     [2, 4, 6, 8, 10, 12, 14], f"{PAPER}:L39",
                     "positioned at layers{2,4,⋯,16}")},
        paper_tables=(DELTAS,), deviations=_DEVIATIONS,
        smoke=Smoke(model="cifar_resnet",
                    model_params={"depth": 20, "exits": [3, 6]}),
    )


def _msdnet():
    return Recipe(
        name="zniber_msdnet_cifar100",
        title="Zniber et al.: sequential / EWC / LwF and the warm-up "
              "ablation, MSDNet (7 blocks) on CIFAR-100",
        paper=PAPER, experiment="Table 1 (MSDNet rows) and Table 2 "
                                "(ablation), Fig. 2",
        dataset="cifar100", input_shape=(32, 32, 3), num_classes=100,
        model="msdnet_cifar", model_params={"exits": 7},
        arms=_arms(1000.0, 0.2, ablation=True),
        optimizer={"name": "adamw", "learning_rate": 1e-3,
                   "weight_decay": 0.0},
        batch_size=512, epochs=1000, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 50},
        augmentation=["cutmix", "mixup"],
        sources={**_sources(512, "learning rate of10−3", 1e-3,
                            "andλ=1000", 1000.0, "andρ=0.2", 0.2),
                 "model_params.exits": paper(
                     7, f"{PAPER}:L39", "CIFAR variant with 7 blocks"),
                 "ablation.lam": paper(10.0, f"{PAPER}:L45",
                                       "EWC withλ=10")},
        paper_tables=(DELTAS,), deviations=_DEVIATIONS,
        # A tiny MSDNet took 20 minutes for the nine sequential arms on 2
        # CPU cores; the smoke scale uses the zoo's smallest 2D network
        # (the MSDNet path is smoke-tested by kubaty_msdnet_cifar100).
        smoke=Smoke(model="small_cnn", model_params={"width": 8}),
    )


register(_resnet34())
register(_msdnet())
