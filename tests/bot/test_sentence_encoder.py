"""The USE sentence-encoder featurizer (bot/sentence_encoder.py): features it adds to a message,
and a tiny pipeline with it that trains, saves, loads and classifies (marked `rasa`: it trains)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from rasa.engine.graph import ExecutionContext
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.tokenizers.whitespace_tokenizer import WhitespaceTokenizer
from rasa.shared.exceptions import InvalidConfigException
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.sentence_encoder import DIMENSIONS, UniversalSentenceEncoderFeaturizer, encoder


def featurizer(**config) -> UniversalSentenceEncoderFeaturizer:
    context = ExecutionContext(graph_schema=None, node_name="use")
    return UniversalSentenceEncoderFeaturizer.create(
        {**UniversalSentenceEncoderFeaturizer.get_default_config(), **config},
        None, None, context)


def tokenized(*texts: str) -> list[Message]:
    tokenizer = WhitespaceTokenizer(WhitespaceTokenizer.get_default_config())
    messages = [Message(data={TEXT: text}) for text in texts]
    return tokenizer.process(messages)


def test_a_message_gets_a_unit_sentence_vector_and_one_row_per_token() -> None:
    [message] = featurizer().process(tokenized("how much are tickets tonight?"))
    sequence, sentence = message.get_dense_features(TEXT)
    assert sentence.features.shape == (1, DIMENSIONS)
    assert np.linalg.norm(sentence.features) == pytest.approx(1.0, abs=1e-3)
    tokens = message.get(TOKENS_NAMES[TEXT])
    assert sequence.features.shape == (len(tokens), DIMENSIONS)
    assert np.abs(sequence.features).sum(axis=1).min() > 0  # each token has its own vector


def test_the_same_question_in_three_languages_lands_close_together() -> None:
    messages = featurizer().process(tokenized(
        "how much are tickets tonight?", "¿cuánto cuestan las entradas esta noche?",
        "was kosten die Tickets heute Abend?", "I lost my phone in the toilets"))
    vectors = np.vstack([m.get_dense_features(TEXT)[1].features for m in messages])
    similarity = vectors @ vectors.T
    for other in (1, 2):
        assert similarity[0, other] > similarity[0, 3] + 0.3


def test_zeros_and_scale_options() -> None:
    [plain] = featurizer(sequence_features="zeros").process(tokenized("where do I park"))
    [scaled] = featurizer(sequence_features="zeros", scale=4.0).process(
        tokenized("where do I park"))
    sequence, sentence = scaled.get_dense_features(TEXT)
    assert not sequence.features.any()
    np.testing.assert_allclose(sentence.features,
                               4.0 * plain.get_dense_features(TEXT)[1].features, rtol=1e-5)
    with pytest.raises(InvalidConfigException):
        featurizer(sequence_features="words")


def test_training_data_is_featurized_in_a_batch_and_the_encoder_loaded_once() -> None:
    component = featurizer()
    messages = tokenized("hi", "are you open on friday", "bye")
    component.process_training_data(TrainingData(training_examples=messages))
    assert all(m.get_dense_features(TEXT)[1] is not None for m in messages)
    assert encoder(1) is encoder(1)
    # An attribute with no tokens (no tokenizer ran) is skipped, not an error.
    bare = Message(data={TEXT: "no tokens here"})
    component.process([bare])
    assert bare.get_dense_features(TEXT) == (None, None)


@pytest.mark.rasa
def test_a_tiny_pipeline_trains_loads_and_understands_spanish_it_never_saw(
        tmp_path: Path) -> None:
    from rasa.core.agent import Agent
    from rasa.model_training import train_nlu

    config = tmp_path / "config.yml"
    config.write_text(
        "recipe: default.v1\nassistant_id: test\nlanguage: en\npipeline:\n"
        "  - name: WhitespaceTokenizer\n"
        "  - name: bot.sentence_encoder.UniversalSentenceEncoderFeaturizer\n"
        "    scale: 8\n"
        "  - name: LogisticRegressionClassifier\n")
    data = tmp_path / "nlu.yml"
    data.write_text("""version: "3.1"
nlu:
- intent: ticket_prices
  examples: |
    - how much are tickets
    - what does entry cost tonight
    - ticket price for saturday
    - how expensive is it to get in
- intent: lost_property
  examples: |
    - I lost my phone
    - has anyone found a wallet
    - left my jacket at the club
    - where is lost and found
- intent: opening_hours
  examples: |
    - what time do you open
    - when do doors close
    - are you open tonight
    - opening hours please
""")
    model = train_nlu(str(config), str(data), str(tmp_path / "models"), fixed_model_name="tiny")
    assert model and Path(model).is_file()

    agent = Agent.load(model)

    async def intent(text: str) -> str:
        return (await agent.parse_message(text))["intent"]["name"]

    assert asyncio.run(intent("how much does a ticket cost")) == "ticket_prices"
    assert asyncio.run(intent("¿cuánto cuestan las entradas?")) == "ticket_prices"
    assert asyncio.run(intent("ich habe mein Handy verloren")) == "lost_property"
    assert asyncio.run(intent("¿a qué hora abrís?")) == "opening_hours"



def test_an_empty_message_still_gets_features() -> None:
    # Rasa strips "   " to "" and the tokenizer still gives it one empty token.
    [message] = featurizer().process(tokenized(""))
    assert message.get_dense_features(TEXT)[1].features.shape == (1, DIMENSIONS)
