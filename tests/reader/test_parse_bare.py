"""`bare: true` beside a kind: accepted where the kind holds exactly one learned tensor, refused
where it is written otherwise (a block, a kind of no tensor or several, not a true/false), and it
never changes a figure."""
import pytest

import archcalc


def refused(spec_error, text):
    err = spec_error(text)
    return err, err.message


def test_bare_changes_no_figure(tmp_path):
    def totals(extra):
        path = tmp_path / f"net{len(extra)}.yaml"
        path.write_text("name: n\ninput: [6, 5, 5]\nlayers:\n"
                        "  - {conv: {out: 6, kernel: 3, padding: 1}}\n"
                        f"  - {{name: layer_scale, scale: {{init: 1.0e-6, broadcast: true}}{extra}}}\n")
        report = archcalc.analyze(path)
        return [(r.name, r.output_shape, r.trainable_params, r.macs) for r in report.layers]

    with_bare = totals(", bare: true")
    assert with_bare == totals("")
    assert with_bare[1] == ("layer_scale", (6, 5, 5), 6, 0)  # one gamma per channel, by hand


def test_the_node_says_bare(tmp_path):
    path = tmp_path / "vit.yaml"
    path.write_text("name: v\ninput: [4, 8]\nlayers:\n"
                    "  - {name: class_token, class_token: {}, bare: true}\n"
                    "  - {name: pos_embedding, positional: {broadcast: true}, bare: true}\n"
                    "  - {linear: 3}\n")
    graph = archcalc.load_spec(path)
    assert [(n.name, n.bare) for n in graph.nodes] == [("class_token", True), ("pos_embedding", True),
                                                       ("linear1", False)]
    # class token: D = 8; positions: (T + 1) * D = 5 * 8
    assert [r.params for r in archcalc.analyze(path).layers] == [8, 40, 8 * 3 + 3]


def test_every_copy_of_a_repeat_is_bare(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("name: r\ninput: [4, 3, 3]\nlayers:\n  - {name: s, scale: 0.5, bare: true, repeat: 3}\n")
    assert [(n.name, n.bare) for n in archcalc.load_spec(path).nodes] == [("s.1", True), ("s.2", True),
                                                                         ("s.3", True)]


def test_a_block_argument_may_stand_for_it(tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text("name: b\ninput: [4, 3, 3]\nblocks:\n  blk:\n    args: {held: false}\n    layers:\n"
                    "      - {name: g, scale: 0.5, bare: held}\n"
                    "layers:\n  - {name: a, blk: {held: true}}\n  - {name: b, blk: {}}\n")
    assert [(n.name, n.bare) for n in archcalc.load_spec(path).nodes] == [("a.g", True), ("b.g", False)]


def test_a_block_cannot_be_bare(spec_error):
    err, msg = refused(spec_error, """
        name: x
        input: [4, 3, 3]
        blocks:
          blk:
            layers: [{scale: 0.5}]
        layers:
          - {blk: {}, bare: true}
        """)
    assert "'blk' is a block" in msg and "class_token" in msg and "scale" in msg
    assert (err.loc.line, err.loc.col) == (8, 21)  # at the value of `bare`


@pytest.mark.parametrize("entry, holds", [
    ("{conv: {out: 2, kernel: 1}, bare: true}", "this conv does not hold exactly one"),  # weight and bias
    ("{relu: {}, bare: true}", "this relu does not hold exactly one"),
])
def test_a_kind_without_one_tensor_cannot_be_bare(spec_error, entry, holds):
    err, msg = refused(spec_error, f"name: x\ninput: [4, 3, 3]\nlayers:\n  - {entry}\n")
    assert holds in msg and "kinds that take it: " in msg
    assert err.layer in ("conv1", "relu1")


def test_the_sinusoidal_encoding_holds_no_tensor(spec_error):
    _, msg = refused(spec_error, "name: x\ninput: [4, 8]\nlayers:\n"
                                    "  - {positional: {learned: false}, bare: true}\n")
    assert "this positional does not hold exactly one" in msg


def test_bare_must_be_true_or_false(spec_error):
    err, msg = refused(spec_error, "name: x\ninput: [4, 3, 3]\nlayers:\n  - {scale: 0.5, bare: yes}\n")
    assert "'bare' must be true or false, got 'yes'" in msg and "YAML 1.2" in msg


def test_bare_among_the_arguments_is_refused_with_a_hint(spec_error):
    _, msg = refused(spec_error, "name: x\ninput: [4, 3, 3]\nlayers:\n  - {scale: {init: 0.5, bare: true}}\n")
    assert "scale has no argument 'bare'" in msg and "go beside the kind" in msg


def test_broadcast_is_for_a_learned_table(spec_error):
    _, msg = refused(spec_error, "name: x\ninput: [4, 8]\nlayers:\n"
                                    "  - {positional: {learned: false, broadcast: true}}\n")
    assert "'broadcast' says how a learned table is held" in msg
