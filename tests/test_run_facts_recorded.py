"""Training writes the facts inference reads (:func:`attnlab.rundir.recorded_facts`): every fresh run
records whether its ``model/`` is a PEFT adapter, as its method says, and a run's config.yaml given
back as a recipe re-applies its settings, never those facts."""

from __future__ import annotations

import yaml

from attnlab import rundir


def test_a_fresh_run_records_whether_its_model_is_an_adapter(tiny_runs):
    from attnlab.training.methods import METHODS

    for method, run in tiny_runs.items():
        config = yaml.safe_load((run / rundir.CONFIG).read_text())
        assert config[rundir.ADAPTER] is METHODS[method].is_adapter, method
        # the record and PEFT's own file agree
        assert config[rundir.ADAPTER] is (run / rundir.MODEL_DIR / rundir.ADAPTER_CONFIG).is_file(), method
        assert config[rundir.MODEL_PATH]


def test_a_run_config_given_back_as_a_recipe_leaves_the_recorded_facts_out(tiny_runs):
    from attnlab.training import TrainConfig

    for method, run in tiny_runs.items():
        cfg = TrainConfig.from_sources(run / rundir.CONFIG)  # an unknown setting would be a UserError
        assert cfg.method == method
        assert not set(rundir.RECORDED) & set(cfg.to_dict())
