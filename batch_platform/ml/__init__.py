"""The quarterly churn model: what the ML assets (`batch_platform/assets/ml.py`) call (SPEC.md, "ML").

One module per concern, each saying why it does what it does:

- `candidates`: the candidates, the baseline and the metrics, declared once (light: the table
  declarations import it);
- `pipelines`: the Spark MLlib pipeline every candidate is fit as;
- `metrics`: the model card's metrics and the recency baseline (scikit-learn);
- `plots`: the PR curve and calibration plot logged with each candidate;
- `training_input`: a model pinned to the Delta version of `gold/training_set` it learned from,
  and `load_training_set_of_model`, which reads those rows back;
- `bootstrap`: the 95 % bootstrap intervals of the eval AUCs, and of a paired difference;
- `registry`: the best candidate registered in MLflow, the champions' aliases, read back;
- `gate`: the promotion gate's rule (light, like `candidates`); `promotion`: the champions decided
  in quarter order; `model_card`: the Markdown card of each registered version;
- `training`: `train_quarters`, what `ml/churn_model` runs;
- `scoring`: `scoring_features` and `score_quarters`, what `ml/churn_scores` runs;
- `out_of_time`: the out-of-time check's evaluation.

The modules below `candidates` import MLlib, MLflow and scikit-learn at their top (seconds), so
this package imports none of them: loading the definitions must not pay for what only a run needs.
"""
