"""Data sources -> a :class:`TextDataset`: a DatasetDict with train/validation/test splits of
``text`` (str) and ``label`` (int) columns, plus the label names."""

from attnlab.data.dataset import TextDataset
from attnlab.data.loading import DATASETS, load_data, load_eval_split

__all__ = ["DATASETS", "TextDataset", "load_data", "load_eval_split"]
