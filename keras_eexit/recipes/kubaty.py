"""Kubaty et al., "Joint or Disjoint": the regime and method comparisons.

Set-ups from appendix D (`002_e4776b2edd439007.txt` L776-L822) and sec. 4
(L271: a learning rate searched per phase, early stopping on validation
accuracy); what the text leaves open is read from the authors' code,
kamadforge/early-exit-benchmark (`scripts/sdn_example.py`: SGD with
`weight_decay=0.0` and no momentum argument — torch's default, 0 —,
batch 125, 10% validation split with seed 42, early stopping on accuracy
with patience 50 and delta 0, at most 1000 epochs; `datasets.py`: the
CIFAR augmentations; `common.py`: `"adam"` is `torch.optim.AdamW`).

The BERT recipes follow appendix D.4 (L822): AdamW with weight decay
1e-4 and a cosine schedule per phase, batch 32, 5 (SST-2) / 10
(Newsgroups) epochs per phase, each phase's rate searched over a 10-value
grid.

The paper gives its CIFAR and text results as figures (Fig. 6,
L335-L345; Fig. 8-9, L285; Fig. 21, 22, 26), without numbers: these
recipes have no transcribed table and their reports show our numbers
alone.
"""

from keras_eexit.recipes.recipe import Arm
from keras_eexit.recipes.recipe import Recipe
from keras_eexit.recipes.recipe import Smoke
from keras_eexit.recipes.recipe import code
from keras_eexit.recipes.recipe import ours
from keras_eexit.recipes.recipe import paper
from keras_eexit.recipes.registry import register

PAPER = "002_e4776b2edd439007.txt"
CODE = "kamadforge/early-exit-benchmark"

RESNET_GRID = (8e-3, 2e-2, 5e-2, 8e-2, 2e-1)
VIT_BACKBONE_RATE = 5e-4
VIT_GRID = (1e-3, 1e-4, 1e-5, 4e-3, 8e-3, 5e-4, 8e-4, 4e-5, 8e-5)

NO_NUMBERS = ("the paper shows these results as figures only (Fig. 6, "
              f"{PAPER}:L335-L345); there is no table to transcribe")


def _arms(backbone_grid, phase_grid, method="sdn"):
    """Joint, disjoint (two-stage) and mixed, each phase's rate searched."""
    suffix = "" if method == "sdn" else f" ({method})"
    return (
        Arm(f"joint{suffix}", "joint", method=method,
            lr_search={"learning_rate": phase_grid}),
        # Augmented batches differ every epoch: the heads phase recomputes
        # the frozen backbone's features instead of replaying a cache.
        Arm(f"disjoint{suffix}", "two_stage", {"cache_features": False},
            method=method,
            lr_search={"backbone_learning_rate": backbone_grid,
                       "heads_learning_rate": phase_grid}),
        Arm(f"mixed{suffix}", "mixed", method=method,
            lr_search={"backbone_learning_rate": backbone_grid,
                       "joint_learning_rate": phase_grid}),
    )


def _common_sources():
    return {
        "early_stopping.monitor": paper(
            "val_accuracy", f"{PAPER}:L271",
            "no improvement in validation set accuracy"),
        "early_stopping.patience": code(
            50, f"{CODE}/scripts/sdn_example.py "
            "(early_stopping_patience = 50)"),
        "epochs": code(1000, f"{CODE}/scripts/sdn_example.py (epochs = "
                       "1000, ended by early stopping)"),
        "epochs_per_phase": code(True, f"{CODE}/train.py (each phase is "
                                 "its own run of `epochs`, ended by its "
                                 "own early stopping)"),
        "lr_search": paper(
            "per phase", f"{PAPER}:L271",
            "select the optimal one for each phase"),
        "validation_split": code(
            0.1, f"{CODE}/common.py (train_val_split_test_size = 0.1)"),
        "seeds": ours((0, 1, 2), "the paper reports mean ± std without "
                      "the number of seeds; the authors' script lists "
                      "exp_ids [1, 2, 3]"),
        "evaluation": paper("budget", f"{PAPER}:L392",
                            "25%, 50%, 75%, 100% of the base network"),
    }


def _resnet(dataset, classes, augmentation_note):
    sources = {
        **_common_sources(),
        "optimizer.name": paper("sgd", f"{PAPER}:L812",
                                "the SGD optimizer is utilized"),
        "optimizer.momentum": code(0.0, f"{CODE}/scripts/sdn_example.py "
                                   "(optimizer_args: lr and weight_decay "
                                   "only; torch's SGD default momentum 0)"),
        "optimizer.weight_decay": code(
            0.0, f"{CODE}/scripts/sdn_example.py (weight_decay = 0.0)"),
        "batch_size": paper(125, f"{PAPER}:L812",
                            "the batch size is set to 125"),
        "lr_search.grid": paper(
            list(RESNET_GRID), f"{PAPER}:L812",
            "{8e-3, 2e-2, 5e-2, 8e-2, 2e-1}"),
        "model": paper("ResNet-34", f"{PAPER}:L335",
                       "ResNet-34, (8), MSDNet (9)"),
        "model_params.exits": ours(
            [5, 7, 9, 11, 13, 15], f"{PAPER}:L814 'every other backbone "
            "block starting from the fifth block' over ResNet-34's 16 "
            "blocks"),
        "augmentation": code("flip_crop", f"{CODE}/datasets.py "
                             f"({augmentation_note})"),
    }
    return Recipe(
        name=f"kubaty_resnet34_{dataset}",
        title=f"Kubaty et al.: joint vs disjoint vs mixed, ResNet-34 (SDN) "
              f"on {dataset.upper()}",
        paper=PAPER, experiment="Fig. 6 (regime comparison, appendix D.2)",
        dataset=dataset, input_shape=(32, 32, 3), num_classes=classes,
        model="cifar_resnet",
        model_params={"depth": 34, "exits": [5, 7, 9, 11, 13, 15],
                      "head": "sdn_pool"},
        arms=_arms(RESNET_GRID, RESNET_GRID),
        optimizer={"name": "sgd", "learning_rate": RESNET_GRID[0]},
        batch_size=125, epochs=1000,
        epochs_per_phase=True, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 50},
        augmentation="flip_crop", sources=sources,
        deviations=(
            "learning rates are chosen on the 10% validation split; "
            f"appendix D.2 ({PAPER}:L812) says 'the best test "
            "classification performance'",
            f"augmentation: {augmentation_note}; we use a random 4-pixel "
            "translation + horizontal flip (keras_eexit.data 'flip_crop')",
            "each regime trains its own backbone (the authors' code shares "
            "one phase-1 run between disjoint and mixed)",
            "the search is greedy, phase by phase, each candidate a whole "
            "run of the first seed (our choice)",
            NO_NUMBERS,
        ),
        smoke=Smoke(model="cifar_resnet",
                    model_params={"depth": 20, "exits": [3, 6]}),
    )


def _vit():
    sources = {
        **_common_sources(),
        "optimizer.name": paper("adamw", f"{PAPER}:L780",
                                "the AdamW optimizer with no weight decay"),
        "optimizer.weight_decay": paper(
            0.0, f"{PAPER}:L780", "with no weight decay"),
        "batch_size": paper(128, f"{PAPER}:L780", "a batch size of 128"),
        "lr_search.backbone": paper(
            VIT_BACKBONE_RATE, f"{PAPER}:L780",
            "For the backbone, we find learning rate of 5e - 4"),
        "lr_search.grid": paper(
            list(VIT_GRID), f"{PAPER}:L780",
            "{1e - 3, 1e - 4, 1e - 5, 4e - 3, 8e - 3, 5e - 4, 8e - 4, "
            "4e - 5, 8e - 5}"),
        "model_params.patch_size": paper(4, f"{PAPER}:L778",
                                         "a patch size of 4"),
        "model_params.dim": paper(256, f"{PAPER}:L778",
                                  "a hidden dimension of 256"),
        "model_params.depth": paper(7, f"{PAPER}:L778", "7 layers"),
        "model_params.heads": paper(8, f"{PAPER}:L778", "8 heads"),
        "model_params.exits_after": paper(
            [2, 3, 4, 5, 6, 7], f"{PAPER}:L778",
            "after 2nd to 7th layers"),
        "augmentation": code("flip_crop", f"{CODE}/datasets.py "
                             "(get_cifar10: horizontal flip and a random "
                             "affine map, rotation 10°, translation 1/8)"),
    }
    return dict(
        paper=PAPER, dataset="cifar10", input_shape=(32, 32, 3),
        num_classes=10, model="vit_exits",
        model_params={"patch_size": 4, "dim": 256, "depth": 7, "heads": 8,
                      "exits_after": (2, 3, 4, 5, 6, 7)},
        optimizer={"name": "adamw", "learning_rate": VIT_BACKBONE_RATE,
                   "weight_decay": 0.0},
        batch_size=128, epochs=1000,
        epochs_per_phase=True, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 50},
        augmentation="flip_crop", sources=sources,
        deviations=(
            "augmentation: the authors' CIFAR-10 transform also rotates by "
            "up to 10°; we use a random 4-pixel translation + horizontal "
            "flip (keras_eexit.data 'flip_crop')",
            "early-stopping patience 50 and the 1000-epoch cap come from "
            "the authors' ResNet/EfficientNet script; appendix D.1 gives "
            "none for the ViT",
            "each regime trains its own backbone (the authors' code shares "
            "one phase-1 run between disjoint and mixed)",
            "the search is greedy, phase by phase, each candidate a whole "
            "run of the first seed (our choice)",
            NO_NUMBERS.replace("Fig. 6", "Fig. 21, 22, 26"),
        ),
        smoke=Smoke(model="vit_exits",
                    model_params={"patch_size": 4, "dim": 16, "depth": 3,
                                  "heads": 2, "exits_after": (1, 2, 3)}),
    )


def _vit_regimes():
    return Recipe(
        name="kubaty_vit_cifar10",
        title="Kubaty et al.: joint vs disjoint vs mixed, ViT (SDN) on "
              "CIFAR-10",
        experiment="Fig. 22 (ViT / CIFAR-10 / SDN, appendix D.1)",
        arms=_arms((VIT_BACKBONE_RATE,), VIT_GRID), **_vit())


def _vit_methods():
    arms = tuple(a for method in ("sdn", "pbee", "gpf", "ztw")
                 for a in _arms((VIT_BACKBONE_RATE,), VIT_GRID, method))
    return Recipe(
        name="kubaty_methods_vit_cifar10",
        title="Kubaty et al.: the regimes under SDN, PBEE, GPF and ZTW, ViT "
              "on CIFAR-10",
        experiment="appendix C, Fig. 21 and 26 (methods × regimes, "
                   f"{PAPER}:L694)",
        arms=arms, **_vit())


def _msdnet():
    sources = {
        **_common_sources(),
        "model": paper("MSDNet", f"{PAPER}:L335",
                       "ResNet-34, (8), MSDNet (9)"),
        "optimizer.name": ours("sgd", "appendix D has no MSDNet set-up; "
                               "the ResNet one (D.2) is used"),
        "optimizer.weight_decay": code(
            0.0, f"{CODE}/scripts/sdn_example.py (weight_decay = 0.0)"),
        "batch_size": ours(125, "the ResNet set-up of D.2"),
        "lr_search.grid": paper(
            list(RESNET_GRID), f"{PAPER}:L812",
            "{8e-3, 2e-2, 5e-2, 8e-2, 2e-1}"),
        "augmentation": code("flip_crop", f"{CODE}/datasets.py "
                             "(get_cifar100: TrivialAugmentWide and random "
                             "erasing)"),
    }
    return Recipe(
        name="kubaty_msdnet_cifar100",
        title="Kubaty et al.: joint vs disjoint vs mixed, MSDNet on "
              "CIFAR-100",
        paper=PAPER, experiment="Fig. 6 (MSDNet panel)",
        dataset="cifar100", input_shape=(32, 32, 3), num_classes=100,
        model="msdnet_cifar", model_params={"exits": 7},
        arms=_arms(RESNET_GRID, RESNET_GRID),
        optimizer={"name": "sgd", "learning_rate": RESNET_GRID[0]},
        batch_size=125, epochs=1000,
        epochs_per_phase=True, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 50},
        augmentation="flip_crop", sources=sources,
        deviations=(
            "appendix D gives no MSDNet set-up: the ResNet one (D.2: SGD, "
            "batch 125, the same learning-rate grid) is used",
            "augmentation: the authors' CIFAR-100 transform is "
            "TrivialAugmentWide + random erasing; we use 'flip_crop'",
            "learning rates are chosen on the validation split (D.2 says "
            "on test performance)",
            NO_NUMBERS,
        ),
        smoke=Smoke(model="msdnet_cifar",
                    model_params={"exits": 3, "channels": 4,
                                  "growth_rate": 2, "head_filters": 8}),
    )


BERT_GRID = (1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2)
# BERT-base (Devlin et al., the paper's reference [5]); the paper does not
# give the size it used.
BERT_BASE = {"vocabulary_size": 30522, "num_layers": 12, "num_heads": 12,
             "hidden_dim": 768, "intermediate_dim": 3072, "head": "cls"}


def _bert(dataset, title, figure, epochs, epochs_text, classes,
          sequence_length, dataset_source):
    """Appendix D.4 (L822): the BERT set-up on SST-2 or Newsgroups."""
    sources = {
        **_common_sources(),
        "dataset": dataset_source,
        "model": paper("BERT", f"{PAPER}:L339",
                       "the BERT (5) multi-exit models"),
        "optimizer.name": paper("adamw", f"{PAPER}:L822",
                                "We use AdamW optimizer"),
        "optimizer.weight_decay": paper(1e-4, f"{PAPER}:L822",
                                        "weight decay 0.0001"),
        "schedule.name": paper("cosine", f"{PAPER}:L822",
                               "with cosine scheduler"),
        "batch_size": paper(32, f"{PAPER}:L822", "batch size of 32"),
        "epochs": paper(epochs, f"{PAPER}:L822", epochs_text),
        "epochs_per_phase": code(True, f"{CODE}/train.py (each phase is "
                                 "its own run of `epochs` with its own "
                                 "CosineAnnealingLR)"),
        "early_stopping.patience": code(
            10, f"{CODE}/common.py (early_stopping_patience = 10); it never "
            "ends a phase this short early, it restores the phase's best "
            "validation weights"),
        "lr_search.grid": paper(
            list(BERT_GRID), f"{PAPER}:L822",
            "{1e-6, 5e-6, 1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2}"),
        "model_params": ours(BERT_BASE, "BERT-base (Devlin et al., the "
                             "paper's [5]); the paper gives no size"),
        "input_shape": ours([sequence_length], "tokens per example; the "
                            "paper gives none"),
        "augmentation": ours(None, "no text augmentation is mentioned"),
    }
    return Recipe(
        name=f"kubaty_bert_{dataset.split('/')[-1]}",
        title=f"Kubaty et al.: joint vs disjoint vs mixed, BERT (SDN) on "
              f"{title}",
        paper=PAPER, experiment=f"{figure} (BERT / {title}, appendix D.4)",
        dataset=dataset, input_shape=(sequence_length,),
        num_classes=classes, model="text_transformer_exits",
        model_params=dict(BERT_BASE),
        arms=_arms(BERT_GRID, BERT_GRID),
        optimizer={"name": "adamw", "learning_rate": BERT_GRID[0],
                   "weight_decay": 1e-4},
        schedule={"name": "cosine"}, batch_size=32, epochs=epochs,
        epochs_per_phase=True, seeds=(0, 1, 2),
        early_stopping={"monitor": "val_accuracy", "patience": 10},
        augmentation=None, sources=sources,
        deviations=(
            "random initialisation and a word vocabulary of the training "
            "texts (30,522 words, BERT-base's vocabulary size) instead of "
            "BERT's WordPiece tokenizer: the paper does not say whether "
            "its BERT is pretrained, and pretrained weights cannot be "
            "downloaded offline",
            "BERT-base's size (12 layers, 12 heads, width 768) with an "
            "exit after every layer: the paper gives neither",
            f"{sequence_length} tokens per example (our choice; longer "
            "texts are truncated)",
            "learning rates are chosen on the 10% validation split (the "
            "paper does not say on what)",
            "each regime trains its own backbone (the authors' code shares "
            "one phase-1 run between disjoint and mixed)",
            "the search is greedy, phase by phase, each candidate a whole "
            "run of the first seed (our choice)",
            NO_NUMBERS.replace("Fig. 6", figure).replace(
                "L335-L345", "L285"),
        ) + (("GLUE's SST-2 test labels are hidden: its validation split "
              "is our test split",) if dataset == "glue/sst2" else ()),
        smoke=Smoke(input_shape=(16,), model="text_transformer_exits",
                    model_params={"vocabulary_size": 64, "num_layers": 2,
                                  "num_heads": 2, "hidden_dim": 16,
                                  "intermediate_dim": 32,
                                  "backend": "builtin", "head": "cls"}),
    )


for _recipe in (
    _bert("glue/sst2", "SST-2", "Fig. 8", 5, "5 epochs for SST dataset", 2,
          64, paper("glue/sst2", f"{PAPER}:L285", "BERT / SST-2")),
    _bert("20newsgroups", "Newsgroups", "Fig. 9", 10,
          "for 10 epochs for Newsgroup dataset", 20, 256,
          paper("20newsgroups", f"{PAPER}:L285", "BERT / Newsgroups")),
    _resnet("cifar10", 10, "get_cifar10: horizontal flip and a random "
            "affine map, rotation 10°, translation 1/8"),
    _resnet("cifar100", 100, "get_cifar100: TrivialAugmentWide and random "
            "erasing"),
    _vit_regimes(),
    _vit_methods(),
    _msdnet(),
):
    register(_recipe)
