"""The "+MST" ablation: the ``mst-448`` architecture trained without the contrastive token loss."""
from isegm.engine.recipes import cclvs_448_recipe

MODEL_NAME = "cclvs_mst448_base448_nocl"
init_model, get_datasets, get_train_config = cclvs_448_recipe("mst_448_vit_base_448", 0.0).hooks()
