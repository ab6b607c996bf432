"""Stage `evaluate`: the generator and a real-data floor, in classifier and InceptionV3 space."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dcgan import atomic, checkpoint
from dcgan.classifier import DomainClassifier
from dcgan.config import load_params
from dcgan.data.prepared import check_scorable, heldout_split, load_meta, load_split
from dcgan.device import resolve_device
from dcgan.errors import run_stage
from dcgan.evaluate import Settings, classifier_scores, noise_like, real_sets, sample
from dcgan.models import Generator
from dcgan.tracking import log_to_training_run

UNLABELLED = ("the data has no labels: the classifier rows are scored in the features of the "
              "untrained (seeded) classifier network; Inception-style score and classes covered "
              "are skipped, they need classes")


def _inception(fake, reference, candidate, params, device) -> dict:
    """InceptionV3 IS/FID/KID for the generator and the floor (torch-fidelity)."""
    from dcgan.inception import inception_metrics

    e = params.evaluate
    kwargs = dict(weights_path=e.inception_weights, kid_subset_size=e.kid_subset_size,
                  device=device, seed=params.seed)
    return {"generator": inception_metrics(fake, reference, **kwargs),
            "floor": inception_metrics(candidate, reference, **kwargs)}


def _classifier_rows(args: argparse.Namespace, params, device) -> tuple[dict, dict]:
    """Classifier-space rows for every candidate, and the image sets the Inception part reuses."""
    e, meta = params.evaluate, load_meta(args.data)
    heldout, _ = heldout_split(args.data, meta)
    reference, candidate, how = real_sets(load_split(args.data, "train")[0],
                                          heldout[0] if heldout else None, e.num_samples,
                                          params.seed)
    clf = checkpoint.load_model(args.classifier, DomainClassifier).to(device)
    s = Settings(e.is_splits, e.kid_subset_size, e.pr_k, e.batch_size, params.seed,
                 labelled=bool(meta["classes"]))

    def scores(images):
        return {"classifier": classifier_scores(clf, images, reference, device, s)}

    def generated(path: Path):
        g = checkpoint.load_model(path, Generator)
        return sample(g, len(reference), g.nz, device, params.seed, e.batch_size)

    fake = generated(Path(args.train) / "generator.pt")
    result = {"samples": len(reference), "reference": how, "generator": scores(fake),
              "floor": scores(candidate), "noise": scores(noise_like(reference, params.seed))}
    if not s.labelled:
        result["notes"] = [UNLABELLED]
    best = Path(args.train) / "generator_best.pt"
    if best.is_file():  # the periodic evaluation's pick, scored the same way
        result["best"] = {**json.loads((Path(args.train) / "best.json").read_text()),
                          **scores(generated(best))}
    return result, {"fake": fake, "reference": reference, "candidate": candidate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--data", default="data/prepared")
    parser.add_argument("--classifier", default="data/classifier/classifier.pt")
    parser.add_argument("--train", default="data/train")
    parser.add_argument("--metrics", default="metrics/eval.json")
    args = parser.parse_args()
    params = load_params(args.params)
    device = resolve_device(params.train.device)
    check_scorable(load_meta(args.data), params.evaluate.num_samples, params.evaluate.pr_k)
    if params.evaluate.inception:  # fail before any work when the weights are missing
        from dcgan.inception import check_weights

        check_weights(params.evaluate.inception_weights)
    result, sets = _classifier_rows(args, params, device)
    if params.evaluate.inception:
        scores = _inception(sets["fake"], sets["reference"], sets["candidate"], params, device)
        for row in ("generator", "floor"):
            result[row]["inception"] = scores[row]
    atomic.write_json(args.metrics, result)
    if problem := log_to_training_run(Path(args.train) / "mlflow_run.json", result):
        print(f"warning: {problem}", file=sys.stderr)
    g, f = result["generator"]["classifier"], result["floor"]["classifier"]
    classes = (f", IS {g['inception_score']['mean']:.2f} (floor {f['inception_score']['mean']:.2f}), "
               f"{g['classes_covered']} classes covered" if "inception_score" in g else
               " (no labels: class scores skipped)")
    print(f"evaluate: classifier FD {g['frechet_distance']:.3f} (floor {f['frechet_distance']:.3f})"
          f"{classes} -> {args.metrics}")


if __name__ == "__main__":
    run_stage(main)
