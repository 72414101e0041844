"""The frozen spec: validation with one-line errors that name file and path, deterministic dumps."""

import pytest

from archsearch.errors import SpecError
from archsearch.spec import dump_spec, load_spec, loads_spec

VALID = """
schema_version: 1
name: t
task: {template: "{question}", extractor: {kind: last_number}}
models: {m: {id: fake/m}}
layers:
  - kind: generate
    params: {model: m, n: 2}
  - kind: rank
    params: {model: m, keep: 1}
"""


def test_round_trip_is_deterministic_and_fills_full_prompts(fixtures, tmp_path):
    spec = load_spec(fixtures / "all_layers.yaml")
    text = dump_spec(spec)
    assert "Think step by step" in text  # the style's full prompt is frozen into the spec
    again = tmp_path / "again.yaml"
    again.write_text(text)
    assert dump_spec(load_spec(again)) == text
    assert load_spec(again) == spec


def test_shipped_baselines_round_trip(root, tmp_path):
    for path in root.glob("experiments/*/baseline.yaml"):
        text = dump_spec(load_spec(path))
        (tmp_path / "x.yaml").write_text(text)
        assert dump_spec(load_spec(tmp_path / "x.yaml")) == text


@pytest.mark.parametrize("mutation, match", [
    (("  - kind: rank\n    params: {model: m, keep: 1}", "  - kind: rank\n    params: {model: m, kep: 1}"),
     r"^bad\.yaml: layers\[1\]\.params\.kep: unknown key \(expected one of: model, keep,"),
    (("keep: 1", "keep: many"), r"^bad\.yaml: layers\[1\]\.params\.keep: Input should be a valid integer"),
    (("keep: 1", "keep: 0"), r"^bad\.yaml: layers\[1\]\.params\.keep: Input should be greater than or equal to 1"),
    (("kind: rank", "kind: rerank"), r"^bad\.yaml: layers\[1\]\.kind: unknown layer kind 'rerank' \(expected one of: .*fuse"),
    (("schema_version: 1", "schema_version: 2"), r"^bad\.yaml: schema_version: unknown version 2 \(this archsearch reads 1\)"),
    (("name: t", "name: t\ncolour: red"), r"^bad\.yaml: colour: unknown key"),
    (("{model: m, n: 2}", "{model: nope, n: 2}"), r"^bad\.yaml: layers\[0\]\.params\.model: unknown model 'nope'"),
    (("last_number", "last_word"), r"^bad\.yaml: task\.extractor\.kind: unknown kind 'last_word'"),
    (("models: {m: {id: fake/m}}", "models: {m: {id: fake/m, price: {input_per_mtok: -1, output_per_mtok: 0}}}"),
     r"^bad\.yaml: models\.m\.price\.input_per_mtok: Input should be greater than or equal to 0"),
    (("layers:", "layers: [oops"), r"^bad\.yaml: line \d+, column \d+: invalid YAML"),
])
def test_malformed_specs_give_one_line_with_file_and_path(mutation, match):
    old, new = mutation
    assert old in VALID
    with pytest.raises(SpecError, match=match) as info:
        loads_spec(VALID.replace(old, new), "bad.yaml")
    assert "\n" not in str(info.value)


def test_yaml_aliases_are_refused():
    bomb = "a: &a [1, 1]\nb: &b [*a, *a]\nc: [*b, *b]\n"
    with pytest.raises(SpecError, match="aliases"):
        loads_spec(bomb, "bomb.yaml")


def test_yaml_tags_that_construct_objects_are_refused():
    with pytest.raises(SpecError, match="invalid YAML"):
        loads_spec("!!python/object/apply:os.system ['echo hi']", "evil.yaml")


def test_top_level_must_be_a_mapping():
    with pytest.raises(SpecError, match=r"^x\.yaml: expected a mapping at the top level, but got list"):
        loads_spec("- 1\n- 2\n", "x.yaml")


def test_a_layer_place_names_its_kind_its_layer_the_candidates_that_can_reach_it_and_the_pipeline_before_it():
    from archsearch.spec import layer_flow, layer_places

    def spec(*layers):
        return loads_spec(VALID.split("layers:")[0] + "layers:\n" + "".join(
            f"  - kind: {kind}\n    params: {params}\n" for kind, params in layers))
    vote = ("vote", "{}")
    a = spec(("generate", "{model: m, n: 2}"), ("generate", "{model: m, n: 3, temperature: 0.8}"),
             ("rank", "{model: m, keep: 4}"), vote)
    b = spec(("generate", "{model: m, n: 5}"), ("rank", "{model: m, keep: 4}"), vote)
    assert [reach for _, reach in layer_flow(a)] == [0, 2, 5, 4]   # a ranker keeps at most ``keep``
    assert [made for made, _ in layer_flow(a)] == [2.0, 3.0, 1.0, 0.0]
    places_a, places_b = layer_places(a), layer_places(b)
    assert [p.split(":")[0] for p in places_a] == ["generate", "generate", "rank", "vote"]
    shape = [p.rsplit(":", 1)[0] for p in places_a]
    assert shape[2:] == [p.rsplit(":", 1)[0] for p in places_b][1:]   # the same layers reached by as many: one shape
    assert places_a[2:] != places_b[1:]                                # ... at other places: other pipelines before them
    assert shape[2].startswith("rank:5@") and shape[3].startswith("vote:4@")
    assert layer_places(loads_spec(dump_spec(a))) == places_a          # a frozen spec keeps its places
