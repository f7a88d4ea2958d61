"""Part B's pieces: the generator's blocks, the slot game, the confidence metrics, the export."""


import numpy as np
import pytest
import torch

from farm.config.family_params import params_from
from farm.data.prepare_tables import attach_black_box, prepare_table
from farm.families import tabular_b as B
from farm.gan.gan_loop import gan_epoch, shuffled_batches


@pytest.fixture(scope="module")
def german(shared_data, tmp_path_factory):
    prepared = prepare_table("german_credit", shared_data / "german_credit" / "german_credit.arff",
                             None, {}, tmp_path_factory.mktemp("exp"), 0)
    report = attach_black_box(prepared, 0)
    return prepared, report


def test_black_box_is_the_seeds_forest_scored_on_test(german):
    prepared, report = german
    bb = prepared.trial_data.black_box
    assert bb.forest.n_estimators == 100 and bb.positive == "bad"
    assert 0.7 < report["auc"] < 0.9 and 0.65 < report["accuracy"] < 0.85


def test_generated_rows_have_exact_one_hots_and_the_forests_label(german):
    prepared, _ = german
    data = prepared.trial_data
    params = params_from("tabular-b", {"g_output": "blockwise", "conf_net": True})
    torch.manual_seed(0)
    pair = B.build(params, data, torch.device("cpu"))
    full, achieved = B.generate(pair.generator, params, data, np.linspace(0, 1, 50), seed=1)
    assert full.shape == (50, data.transformer.width)
    for block in data.transformer.blocks:
        if block.column.kind == "nominal":
            cells = full[:, block.start:block.stop]
            assert np.all(cells.sum(axis=1) == 1) and set(np.unique(cells)) <= {0.0, 1.0}
    labels = data.transformer.labels(full, data.target)
    assert list(labels) == list(data.black_box.labels(achieved))
    np.testing.assert_allclose(achieved, data.black_box.confidence_np(full[:, data.features]))


def test_confidence_metrics_are_bounded_and_export_adds_two_columns(german):
    prepared, _ = german
    data = prepared.trial_data
    params = params_from("tabular-b", {"eval_requests": 5})
    pair = B.build(params, data, torch.device("cpu"))
    metrics = B.confidence_metrics(pair.generator, params, data, seed=0)
    assert 0 <= metrics["confidence/error"] <= 1 and 0 <= metrics["confidence/coverage"] <= 10
    frame = B.sample_frame(pair.generator, params, data, 20, seed=0)
    assert list(frame.columns[-2:]) == ["requested_confidence", "achieved_confidence"]
    assert list(frame.columns[:-2]) == list(prepared.table.frame.columns)


def test_picking_keeps_the_closest_of_k_draws_and_reports_the_bare_error(german):
    """K draws per request: each kept row is at least as close as the single draw (which is
    among the K), its confidence is the forest's real answer, and the metrics say both."""
    prepared, _ = german
    data = prepared.trial_data
    params = params_from("tabular-b", {"conf_net": True, "pick_best_of": 8, "eval_requests": 5})
    torch.manual_seed(0)
    pair = B.build(params, data, torch.device("cpu"))
    requested = np.linspace(0, 1, 40)
    _, single = B.generate(pair.generator, params, data, requested, seed=3, best_of=1)
    full, picked = B.generate(pair.generator, params, data, requested, seed=3)
    assert np.all(np.abs(picked - requested) <= np.abs(single - requested) + 1e-12)
    assert np.abs(picked - requested).mean() < np.abs(single - requested).mean()
    np.testing.assert_allclose(picked, data.black_box.confidence_np(full[:, data.features]))
    metrics = B.confidence_metrics(pair.generator, params, data, seed=0)
    assert metrics["confidence/error"] < metrics["confidence/error_single_draw"]


def test_real_rows_carry_the_forests_answers(german):
    prepared, _ = german
    data = prepared.trial_data
    rows, answers = B.real_rows(data, torch.device("cpu"))
    assert rows.shape == data.fit_enc.shape  # whole rows: a critic may judge the label too
    np.testing.assert_allclose(answers.numpy(),
                               data.black_box.confidence_np(rows.numpy()[:, data.features]),
                               atol=1e-6)


def test_selection_is_the_error_then_realism_within_the_tolerance():
    epochs = [{"confidence/error": 0.030, "detection_auc": 0.70},
              {"confidence/error": 0.015, "detection_auc": 0.95},
              {"confidence/error": 0.019, "detection_auc": 0.85},
              {"confidence/error": 0.021, "detection_auc": 0.60}]
    plain = [B.selection_score(m, 0.0) for m in epochs]
    assert plain == [m["confidence/error"] for m in epochs]  # the report's rule: the error
    tolerant = [B.selection_score(m, 0.02) for m in epochs]
    assert np.argsort(tolerant).tolist() == [2, 1, 3, 0]  # within 0.02 first, by detection


def test_anchored_game_trains_every_critic_and_lowers_the_gap(german):
    """A few epochs of the proposal's penalty already pull BB(G(z, c)) towards c."""
    prepared, _ = german
    data = prepared.trial_data
    params = params_from("tabular-b", {"conf_net": True, "conf_weight": 50.0, "realness": True,
                                       "realness_weight": 0.1, "c_low": 0.0, "c_high": 1.0,
                                       "lr_g": 5e-4, "lr_d": 2e-4, "surrogate_warmup": 100,
                                       "eval_requests": 10})
    torch.manual_seed(0)
    pair = B.build(params, data, torch.device("cpu"))
    game = B.game(params, data, pair, torch.device("cpu"))
    real = B.real_rows(data, torch.device("cpu"))
    order = torch.Generator().manual_seed(0)
    before = B.confidence_metrics(pair.generator, params, data, 0)["confidence/error"]
    stats = {}
    for epoch in range(1, 41):
        stats = gan_epoch(pair, shuffled_batches(real, 64, order), game, epoch)
    after = B.confidence_metrics(pair.generator, params, data, 0)["confidence/error"]
    assert {"surrogate_loss", "confidence_penalty", "confidence_gap", "d_acc"} <= set(stats)
    assert after < before, (before, after)


def test_feature_nominal_blocks_point_at_one_hots_in_target_free_rows(german):
    prepared, _ = german
    data = prepared.trial_data
    rows = data.fit_enc[:, data.features]
    blocks = B.feature_nominal_blocks(data)
    assert len(blocks) == 13  # German credit's nominal features, the target left out
    for lo, hi in blocks:
        assert np.all(rows[:, lo:hi].sum(axis=1) == 1)
    assert blocks[-1][1] <= rows.shape[1]


def test_feature_nominal_blocks_shift_past_a_target_in_the_middle(shared_data, tmp_path):
    prepared = prepare_table("german_credit", shared_data / "german_credit" / "german_credit.arff",
                             "own_telephone", {}, tmp_path, 0)
    data = prepared.trial_data
    rows = data.fit_enc[:, data.features]
    blocks = B.feature_nominal_blocks(data)
    assert len(blocks) == 13  # 12 nominal features plus `class`, the target left out
    for lo, hi in blocks:
        assert np.all(rows[:, lo:hi].sum(axis=1) == 1)
    assert blocks[-1][1] == rows.shape[1]  # `class` is last: its block moved left


def test_a_generator_that_writes_the_label_shows_it_to_the_realness_critic_only(german):
    """With `emit_label`, G writes whole rows: the realness critic judges them, label included,
    against whole real rows; the forest, the slot judge and the stand-in read the features; an
    exported row's label is still the forest's answer."""
    prepared, _ = german
    data = prepared.trial_data
    params = params_from("tabular-b", {"emit_label": True, "realness": True, "conf_net": True,
                                       "conf_weight": 50.0, "g_output": "blockwise",
                                       "surrogate_warmup": 20, "eval_requests": 5})
    torch.manual_seed(0)
    pair = B.build(params, data, torch.device("cpu"))
    whole, features = data.transformer.width, len(data.features)
    assert pair.generator(torch.randn(4, params.noise_dim), torch.rand(4)).shape == (4, whole)
    widths = {"realness": set(), "slot": set(), "surrogate": set()}
    for name in widths:
        getattr(pair.discriminator, name).register_forward_hook(
            lambda module, args, out, name=name: widths[name].add(args[0].shape[1]))
    game = B.game(params, data, pair, torch.device("cpu"))
    real = B.real_rows(data, torch.device("cpu"))
    stats = gan_epoch(pair, shuffled_batches(real, 64, torch.Generator().manual_seed(0)), game, 1)
    assert widths == {"realness": {whole}, "slot": {features + 2}, "surrogate": {features}}
    assert {"confidence_penalty", "surrogate_loss"} <= set(stats)
    full, achieved = B.generate(pair.generator, params, data, np.linspace(0, 1, 30), seed=1)
    assert full.shape == (30, whole)
    assert list(data.transformer.labels(full, data.target)) == list(data.black_box.labels(achieved))
    np.testing.assert_allclose(achieved, data.black_box.confidence_np(full[:, data.features]))


def test_the_black_box_learns_from_the_fit_rows_only_so_val_scores_are_clean(german,
                                                                             monkeypatch):
    """tabular-b's val metrics score the generator against the forest that steers it: that
    forest must not have seen the val rows (the fit rows alone), as summary.json records."""
    import farm.models.blackbox

    prepared, report = german
    assert report["fitted_on"] == "fit"
    seen = {}
    real_fit = farm.models.blackbox.fit_black_box

    def spy(X, y, *args, **kwargs):
        seen["rows"] = len(X)
        return real_fit(X, y, *args, **kwargs)

    monkeypatch.setattr(farm.models.blackbox, "fit_black_box", spy)
    attach_black_box(prepared, 0)
    assert seen["rows"] == len(prepared.split.fit) < len(prepared.split.train)
    attach_black_box(prepared, 0, "train")  # an older run's forest, rebuilt for `sample`
    assert seen["rows"] == len(prepared.split.train)
    attach_black_box(prepared, 0)  # the module's fixture keeps its own forest
