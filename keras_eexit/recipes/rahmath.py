"""Rahmath P et al., "Strategies at a glance": six strategies, three hybrids.

Set-up: sec. 5 (`003_42bed18b8c3d2a0f.txt`): E-MobileNet, E-ResNet
(ResNet-50) and E-VGG (VGG-16) with three exits each plus the final one
(L425), on CIFAR-10 and CIFAR-100 (L433); SGD with momentum 0.9 at 0.1
(E-ResNet) / 0.01 (E-VGG), Adam at 0.001 (E-MobileNet) (L444); 200 / 300
epochs with early-stopping patience 10 (L446); batch 128, seed 42,
deterministic, no augmentation beyond mean-std normalisation, five
repetitions (L455, L500); one-way ANOVA and Tukey HSD across strategies
(L496-L498). Joint training weights the exits linearly from 0.3 (first)
to 1.0 (final) (L461); distillation uses T = 3 and α = 0.1 (L471).

The paper reports its accuracies as curves (Fig. 8-10); its numbers are
the ANOVA statistics of Table 2 (L538-L549), transcribed per recipe.
"""

from keras_eexit.recipes.recipe import Arm
from keras_eexit.recipes.recipe import PaperTable
from keras_eexit.recipes.recipe import Recipe
from keras_eexit.recipes.recipe import Smoke
from keras_eexit.recipes.recipe import ours
from keras_eexit.recipes.recipe import paper
from keras_eexit.recipes.registry import register

PAPER = "003_42bed18b8c3d2a0f.txt"

# Table 2 (L538-L549): ANOVA F / p of training and validation loss and
# accuracy across strategies, one line per model and data set.
TABLE_2 = {
    ("mobilenet", "cifar10"): (544, ("824.24 / 6.9e-22", "3562.42 / 3.2e-28",
                                     "130.30 / 5.0e-14", "839.66 / 5.8e-22")),
    ("mobilenet", "cifar100"): (545, ("36332.91 / 2.7e-38",
                                      "34305.20 / 4.8e-38",
                                      "1536.00 / 1.4e-24",
                                      "417.14 / 5.9e-19")),
    ("resnet", "cifar10"): (546, ("5482.75 / 4.3e-30", "25434.05 / 9.5e-37",
                                  "240.20 / 1.3e-16", "341.46 / 4.2e-18")),
    ("resnet", "cifar100"): (547, ("40268.30 / 9.6e-39",
                                   "122183.05 / 1.4e-43",
                                   "2082.46 / 6.8e-26", "141.04 / 2.4e-14")),
    ("vgg", "cifar10"): (548, ("347.92 / 3.5e-18", "1525.94 / 1.5e-24",
                               "4.20 / 1.2e-2", "79.62 / 5.4e-12")),
    ("vgg", "cifar100"): (549, ("11231.30 / 3.3e-33", "46075.22 / 2.5e-39",
                                "626.72 / 1.0e-20", "72.21 / 1.3e-11")),
}

_MODELS = {
    "mobilenet": ("mobilenet_v2_exits", {}, "E-MobileNet",
                  {"name": "adam", "learning_rate": 1e-3},
                  paper(1e-3, f"{PAPER}:L444",
                        "E-MobileNet adopts Adam at 0.001")),
    "resnet": ("resnet50_exits", {}, "E-ResNet",
               {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9},
               paper(0.1, f"{PAPER}:L444",
                     "initial learning rates 0.1 and 0.01")),
    "vgg": ("vgg16_exits", {"exits_after": (5, 9, 13)}, "E-VGG",
            {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9},
            paper(0.01, f"{PAPER}:L444",
                  "initial learning rates 0.1 and 0.01")),
}

ARMS = (
    Arm("Joint", "joint", {"weights": "to_final"}),
    Arm("Separate", "separate", {}),
    Arm("Branch-wise", "branch_wise", {}),
    Arm("Two-stage", "two_stage", {"heads": "one_by_one"}),
    Arm("Distillation", "distillation", {"temperature": 3.0, "alpha": 0.1}),
    Arm("Joint-branch", "joint_branch", {}),
    Arm("Joint-two-stage", "joint_two_stage", {}),
    Arm("Pretrained-branch", "pretrained_branch", {}),
)


def _recipe(key, dataset):
    model, params, label, optimizer, rate_source = _MODELS[key]
    classes = 10 if dataset == "cifar10" else 100
    epochs = 200 if dataset == "cifar10" else 300
    line, cells = TABLE_2[(key, dataset)]
    name_in_table = f"{label} ({dataset.upper().replace('CIFAR', 'CIFAR-')})"
    sources = {
        "optimizer.learning_rate": rate_source,
        "optimizer.name": paper(optimizer["name"], f"{PAPER}:L444",
                                "use SGD (momentum 0.9)"
                                if key != "mobilenet" else "adopts Adam"),
        "epochs": paper(epochs, f"{PAPER}:L446",
                        "Epoch budgets are 200 for CIFAR-10, 300 for "
                        "CIFAR-100"),
        "early_stopping.patience": paper(10, f"{PAPER}:L446",
                                         "early-stopping patience = 10"),
        "batch_size": paper(128, f"{PAPER}:L455",
                            "Batch size is 128 for CIFAR"),
        "seeds": paper(5, f"{PAPER}:L500", "five separate trials"),
        "augmentation": paper(None, f"{PAPER}:L455",
                              "No augmentation beyond mean-std "
                              "normalisation"),
        "statistics": paper("anova_tukey", f"{PAPER}:L496",
                            "one-way ANOVA and Tukey"),
        "regimes.weights": paper("to_final", f"{PAPER}:L461",
                                 "decrease linearly from 1.0 at the final "
                                 "exit to 0.3"),
        "regimes.temperature": paper(3.0, f"{PAPER}:L471", "T = 3"),
        "regimes.alpha": paper(0.1, f"{PAPER}:L471", "alpha = 0.1"),
        "architecture": paper(label, f"{PAPER}:L425",
                              "three strategically positioned exits"),
        "early_stopping.monitor": ours(
            "val_accuracy", "the paper does not say what early stopping "
            "watches"),
    }
    if key != "mobilenet":
        sources["optimizer.momentum"] = paper(0.9, f"{PAPER}:L444",
                                              "SGD (momentum 0.9)")
    if key == "vgg":
        sources["model_params.exits_after"] = paper(
            [5, 9, 13], f"{PAPER}:L425", "at the 5th, 9th, and 13th")
    deviations = [
        "random initialisation: the paper starts from ImageNet-pretrained "
        f"weights ({PAPER}:L425), which cannot be downloaded offline (pass "
        "weights='imagenet' in model_params where they are cached)",
        "mean-std normalisation per channel, with 10% of the training set "
        "held out for early stopping (the paper does not say which data "
        "early stopping watches)",
        "seeds 0-4 instead of the paper's fixed seed 42 repeated five times",
        "the paper's exit branches (max-pool, 128-filter convolution, "
        "dense 128, dropout) are replaced by the zoo's linear heads",
        "the paper's accuracies are curves (Fig. 8-10); only Table 2's "
        "ANOVA statistics are transcribed; ours are in comparison/",
    ]
    if key == "resnet":
        deviations.append("exit taps: the zoo's ResNet-50 stage ends, not "
                          "the paper's layers 10, 22 and 40")
    if key == "mobilenet":
        deviations.append("MobileNet-V2 (the zoo's) for the paper's "
                          "MobileNet (Howard et al., 2017); taps at the "
                          "zoo's defaults, not layers 8, 14 and 24")
    return Recipe(
        name=f"rahmath_{key}_{dataset}",
        title=f"Rahmath P et al.: six strategies and three hybrids, {label} "
              f"on {dataset.upper()}",
        paper=PAPER, experiment="sec. 6, Fig. 8-10, Table 2",
        dataset=dataset, input_shape=(32, 32, 3), num_classes=classes,
        model=model, model_params=dict(params), arms=ARMS,
        optimizer=optimizer, batch_size=128, epochs=epochs,
        seeds=(0, 1, 2, 3, 4),
        early_stopping={"monitor": "val_accuracy", "patience": 10},
        augmentation=None, evaluation="anytime",
        statistics="anova_tukey", sources=sources,
        paper_tables=(PaperTable(
            table="Table 2", where=f"{PAPER}:L{line}",
            metric="ANOVA F / p across strategies",
            columns=("train loss", "val loss", "train accuracy",
                     "val accuracy"),
            rows={name_in_table: cells}),),
        deviations=tuple(deviations),
        # Nine regimes × eight arms × six recipes: the smoke scale uses
        # the zoo's smallest 2D network (three exits, width 8).
        smoke=Smoke(model="small_cnn", model_params={"width": 8},
                    seeds=(0,)),
    )


for _key in ("mobilenet", "resnet", "vgg"):
    for _dataset in ("cifar10", "cifar100"):
        register(_recipe(_key, _dataset))
