"""What an EventBridge target receives: the event, ``Input``, ``InputPath`` or a transformer."""

from __future__ import annotations

import json

from snapcdc_local.emulator.eventbridge import target_input

EVENT = {
    "id": "e1",
    "time": "2020-12-30T10:00:00Z",
    "detail": {"bucket": {"name": "imports"}, "object": {"key": 'a/"b"/c.csv.gz', "size": 79}},
}


class Rule:
    name = "rule"
    arn = "arn:aws:events:us-east-1:123456789012:rule/rule"


def test_without_input_settings_the_target_gets_the_event():
    assert json.loads(target_input({"Arn": "x"}, EVENT, Rule())) == EVENT


def test_input_is_sent_as_given():
    assert target_input({"Arn": "x", "Input": '{"fixed": 1}'}, EVENT, Rule()) == '{"fixed": 1}'


def test_input_path_selects_part_of_the_event():
    assert json.loads(
        target_input({"Arn": "x", "InputPath": "$.detail.bucket"}, EVENT, Rule())
    ) == {"name": "imports"}


def test_input_transformer_fills_placeholders_as_text_or_json():
    transformer = {
        "InputPathsMap": {"key": "$.detail.object.key", "size": "$.detail.object.size"},
        "InputTemplate": (
            '{"key": "<key>", "size": <size>, "raw": <key>, "rule": "<aws.events.rule-name>"}'
        ),
    }
    text = target_input({"Arn": "x", "InputTransformer": transformer}, EVENT, Rule())
    assert json.loads(text) == {
        "key": 'a/"b"/c.csv.gz',
        "size": 79,
        "raw": 'a/"b"/c.csv.gz',
        "rule": "rule",
    }
