"""`tf.data` pipelines shared by every data source.

Train: [cache] -> shuffle(seeded, reshuffled each epoch) -> batch ->
[to float, augment, normalise] -> prefetch.
Validation / test: batch -> [cache] -> [to float, normalise] -> prefetch.

The cache holds the examples as the source delivers them (uint8 for TFDS
images), so normalised float copies never occupy memory. Every pipeline
uses `AutoShardPolicy.DATA`, so a multi-worker strategy splits batches,
not files.
"""

from keras_eexit.utils.lazy_import import tf


def make_options(deterministic):
    """Returns the `tf.data.Options` of every pipeline.

    Args:
        deterministic: If `True`, element order is guaranteed
            (`options.deterministic = True`); if `False`, parallel stages
            may hand out elements out of order for throughput.
    """
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return options


def _apply_cache(ds, cache):
    if cache is True:
        return ds.cache()
    if isinstance(cache, str):
        return ds.cache(cache)
    return ds


def _batch_map(to_float, augmenter, normalise):
    """Composes the per-batch stages into one map function (or `None`)."""
    stages = [stage for stage in (to_float, augmenter, normalise) if stage]
    if not stages:
        return None

    def map_batch(x, y):
        if to_float is not None:
            x = to_float(x)
        if augmenter is not None:
            x, y = augmenter(x, y)
        if normalise is not None:
            x = normalise(x)
        return x, y

    return map_batch


def train_pipeline(
    ds,
    *,
    batch_size,
    shuffle_buffer,
    seed,
    cache,
    deterministic,
    to_float=None,
    augmenter=None,
    normalise=None,
):
    """Builds the training pipeline from an unbatched `(x, y)` dataset.

    Args:
        ds: Unbatched `tf.data.Dataset` of `(x, y)`.
        batch_size: Examples per batch (the last batch may be smaller).
        shuffle_buffer: Size of the shuffle buffer.
        seed: Shuffle (and augmentation) seed.
        cache: `True` for an in-memory cache before shuffling, a path for a
            file cache, `False` for none.
        deterministic: Whether to keep element order and run the batch
            stage sequentially, so augmentation draws are reproducible.
        to_float: Optional batch function to float inputs (before
            augmentation).
        augmenter: Optional batch function `(x, y) -> (x, y)`.
        normalise: Optional batch function applied last.

    Returns:
        The batched, prefetched `tf.data.Dataset`.
    """
    ds = _apply_cache(ds, cache)
    ds = ds.shuffle(
        shuffle_buffer, seed=seed, reshuffle_each_iteration=True
    )
    ds = ds.batch(batch_size)
    map_batch = _batch_map(to_float, augmenter, normalise)
    if map_batch is not None:
        # A stateful random layer drawn from in parallel calls consumes its
        # generator in a racy order: keep it sequential when asked for
        # reproducibility.
        parallel = None if deterministic and augmenter else tf.data.AUTOTUNE
        ds = ds.map(map_batch, num_parallel_calls=parallel)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.with_options(make_options(deterministic))


def eval_pipeline(ds, *, batch_size, cache, to_float=None, normalise=None):
    """Builds a validation / test pipeline from an unbatched dataset.

    Args:
        ds: Unbatched `tf.data.Dataset` of `(x, y)`.
        batch_size: Examples per batch.
        cache: As in `train_pipeline`; the cache sits after batching.
        to_float: Optional batch function to float inputs.
        normalise: Optional batch function applied last.

    Returns:
        The batched, prefetched `tf.data.Dataset`, always in a fixed order
        (`options.deterministic = True`): evaluation results are compared
        example by example.
    """
    ds = ds.batch(batch_size)
    ds = _apply_cache(ds, cache)
    map_batch = _batch_map(to_float, None, normalise)
    if map_batch is not None:
        ds = ds.map(map_batch, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds.with_options(make_options(True))
