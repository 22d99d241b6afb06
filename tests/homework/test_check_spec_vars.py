"""An answer may name the spec's vars: the lecture's two-layer MLP (vars d = 784, N_H = 100,
K = 10) answered as N_H (d + 1) + K (N_H + 1), as the lecture writes it, is right; the size symbols
stay symbols."""
from pathlib import Path

from archcalc.homework.grade import grade

ROOT = Path(__file__).resolve().parents[2]
MLP = ROOT / "specs" / "lecture" / "two_layer_mlp.yaml"


def verdicts(result):
    return {r.quantity: r.verdict for r in result.results}


def test_the_lectures_formula_in_the_specs_vars_is_right(tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text('answers:\n  hidden.params: "N_H*(d + 1)"\n  output.params: "K*(N_H + 1)"\n'
                       '  total.params: "N_H*(d + 1) + K*(N_H + 1)"\n  total.macs: "N_H*d + K*N_H + 1"\n')
    result = grade(MLP, answers)
    # 100*785 = 78,500; 10*101 = 1,010; 79,510; MACs 784*100 + 100*10 = 79,400 (not + 1)
    assert verdicts(result) == {"hidden.params": "right", "output.params": "right", "total.params": "right",
                                "total.macs": "wrong"}
    assert [r.expected for r in result.results] == ["78,500", "1,010", "79,510", "79,400"]


def test_a_set_var_is_read_at_its_set_value(tmp_path):
    answers = tmp_path / "a.yaml"
    answers.write_text('set: {d: 100}\nanswers:\n  hidden.params: "N_H*(d + 1)"\n  output.params: 1010\n')
    result = grade(MLP, answers)
    assert verdicts(result) == {"hidden.params": "right", "output.params": "right"}
    assert result.results[0].expected == "10,100"  # 100*(100 + 1)


def test_vars_beside_size_symbols(tmp_path):
    spec = tmp_path / "net.yaml"
    spec.write_text("name: net\nvars: {C: 16, K: 5}\ninput: [1, H, W]\nlayers:\n"
                    "  - {name: conv1, conv: {out: C, kernel: K}}\n  - flatten\n  - {name: fc, linear: 10}\n")
    answers = tmp_path / "a.yaml"
    answers.write_text('answers:\n  conv1.params: "(K*K + 1)*C"\n  fc.params: "(C*(H - K + 1)*(W - K + 1) + 1)*10"\n'
                       '  conv1.output_shape: [C, "H - 4", "W - K + 1"]\n')
    result = grade(spec, answers)
    # (25 + 1)*16 = 416; fc (16*(H - 4)*(W - 4) + 1)*10
    assert verdicts(result) == {"conv1.params": "right", "fc.params": "right", "conv1.output_shape": "right"}
