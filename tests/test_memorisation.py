"""The memorisation check: copies of training images are caught, new images are not."""

from __future__ import annotations

import torch

from dcgan.memorisation import CopyCheck, Space, closest_pairs, nearest


def _images(n: int, seed: int) -> torch.Tensor:
    """Smooth random 28x28 images in [-1, 1] (upsampled noise: neighbours are not all alike)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 1, 7, 7, generator=g) * 2 - 1
    return torch.nn.functional.interpolate(small, size=28, mode="bilinear", align_corners=False)


PIXELS = [Space("pixels", lambda x: x), Space("halves", lambda x: x.flatten(1)[:, ::2])]


def test_nearest_finds_each_rows_neighbour_and_skips_itself():
    points = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    d, i = nearest(torch.tensor([[2.9, 0.0], [0.1, 0.1]]), points)
    assert i.tolist() == [1, 0] and torch.allclose(d, torch.tensor([0.1, 2 ** 0.5 / 10]), atol=1e-6)
    d, i = nearest(points, points, skip_self=True)
    assert i.tolist() == [1, 0, 0] and torch.allclose(d, torch.tensor([3.0, 3.0, 4.0]))


def test_copies_are_counted_new_images_are_not_and_the_real_rate_is_about_one_percent():
    train, heldout = _images(2000, 0), _images(1000, 1)
    check = CopyCheck(train, heldout, PIXELS, seed=0)
    new, _ = check.score(_images(1000, 2))
    noise = 0.01 * torch.randn(500, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    copied, (dist, index) = check.score(torch.cat([train[:500] + noise, _images(500, 4)]))
    for space in ("pixels", "halves"):
        assert new[space]["share"] < 0.04  # unseen images from the same source: ~1%
        assert 0.49 <= copied[space]["share"] <= 0.53  # the 500 copies, and ~1% of the rest
        assert copied[space]["mean_to_train"] < new[space]["mean_to_train"]
        assert copied[space]["mean_to_train"] < copied[space]["mean_to_heldout"]
        assert 0.0 < check.reference()[space]["share"] < 0.04
    assert index[:500].tolist() == list(range(500))  # each copy's source is its nearest image
    samples, sources, distances = closest_pairs(train[:500] + noise, train,
                                                (dist[:500], index[:500]), k=4)
    assert samples.shape == sources.shape == (4, 1, 28, 28)
    assert torch.allclose(samples, sources, atol=0.05)  # each sample beside its source
    assert distances == sorted(distances) and distances[0] == dist[:500].min().item()


def test_without_a_held_out_split_each_image_is_measured_against_the_others():
    train = _images(1000, 0)
    check = CopyCheck(train, None, PIXELS[:1], seed=0)
    scores, _ = check.score(train[:100] + 0.001)
    assert scores["pixels"]["share"] == 1.0 and "mean_to_heldout" not in scores["pixels"]
    assert "no held-out split" in check.how


def test_the_closest_pairs_figure_labels_rows_and_distances_and_flags_copies(tmp_path, monkeypatch):
    """Each sample over its nearest training image, the distance under the pair (a copy
    flagged), the rows named, each image drawn large enough to judge."""
    from PIL import Image

    from dcgan.figures import nearest_pairs

    samples, sources = _images(3, 0), _images(3, 1)
    nearest_pairs(samples, sources, [0.5, 2.0, 9.25], 1.0, tmp_path / "n.png", "closest")
    with Image.open(tmp_path / "n.png") as image:
        assert image.width >= 3 * 120 and image.height >= 300  # ~150 px per 28-px image

    from dcgan import figures

    drawn = []
    monkeypatch.setattr(figures, "save_figure", lambda fig, path: drawn.append(fig))
    nearest_pairs(samples, sources, [0.5, 2.0, 9.25], 1.0, tmp_path / "m.png", "closest")
    axes = drawn[0].axes
    assert axes[0].get_ylabel() == "sample" and axes[3].get_ylabel() == "nearest\ntraining image"
    assert [ax.get_xlabel() for ax in axes[3:]] == ["0.50 copy", "2.00", "9.25"]
    assert "closer than 1.00" in drawn[0]._suptitle.get_text()
    figures.plt.close(drawn[0])
