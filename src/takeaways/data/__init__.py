"""Data for takeaways: embedded offline datasets, user-data loaders, planted label
noise and long tails, WordPiece tokenizers, and generated tasks (the passkey task, associative recall, marked-review documents)."""

from takeaways.data.embedded import (
    Bundle,
    DatasetInfo,
    Split,
    cache_dir,
    list_datasets,
    load,
    sample_indices,
    split_indices,
    text_array,
)
from takeaways.data.noise import (
    ASYMMETRIC_MNIST,
    Noise,
    corrupt_labels,
    detection_scores,
    long_tail,
    parse_noise,
    pool_counts,
    unlabeled_pool,
)
from takeaways.data.tasks import (
    MarkedDocs,
    Recall,
    marked_review_task,
    needle_task,
    needle_vocab_size,
    recall_task,
    recall_vocab_size,
    recall_window,
)
from takeaways.data.tokenize import Tokenizer, minilm_tokenizer, train_wordpiece
from takeaways.data.user import Rows, load_csv, load_image_folder, load_npz, load_text, read_rows

__all__ = [
    "Bundle",
    "DatasetInfo",
    "Split",
    "cache_dir",
    "list_datasets",
    "load",
    "sample_indices",
    "split_indices",
    "text_array",
    "Rows",
    "read_rows",
    "load_csv",
    "load_image_folder",
    "load_npz",
    "load_text",
    "corrupt_labels",
    "Noise",
    "parse_noise",
    "detection_scores",
    "long_tail",
    "unlabeled_pool",
    "pool_counts",
    "ASYMMETRIC_MNIST",
    "Tokenizer",
    "train_wordpiece",
    "minilm_tokenizer",
    "needle_task",
    "MarkedDocs",
    "marked_review_task",
    "needle_vocab_size",
    "Recall",
    "recall_task",
    "recall_vocab_size",
    "recall_window",
]
