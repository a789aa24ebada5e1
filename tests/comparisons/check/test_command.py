"""``cnnref check``: exit codes 0 / 1 / 2, the JSON and Markdown files."""

import json

from comparisons import cli
from tests.comparisons.check.helpers import F, functions


def test_pass_exit_0_and_json(tmp_path, capsys):
    out = tmp_path / "r.json"
    code = cli.main(["check", F + "class_layers:Linear", "--layer", "Linear", "--framework", "reference",
                     "--json", str(out), "--markdown", str(tmp_path / "r.md")])
    assert code == 0
    assert capsys.readouterr().out.strip().splitlines()[-1].startswith("PASS Linear")
    assert json.loads(out.read_text())["passed"] is True and (tmp_path / "r.md").exists()


def test_fail_exit_1_names_quantity_and_hint(capsys):
    code = cli.main(["check", "--layer", "Conv2d", "--framework", "reference", "--max-cases", "4", "--functions",
                     f"{F}cs231n_layers:conv_forward_naive,{F}buggy:conv_backward_bias_sign"])
    text = capsys.readouterr().out
    assert code == 1 and "FAIL bias differs" in text and "hint: bias-gradient sign" in text


def test_attribute_style_from_the_command_line():
    assert cli.main(["check", F + "attr_layers:Conv2d", "--layer", "Conv2d", "--framework", "reference",
                     "--max-cases", "5", "--param", "weight=W", "--param", "bias=b", "--grad", "weight=dW",
                     "--grad", "bias=db"]) == 0


def test_usage_errors_exit_2_with_one_line(capsys):
    for argv in (["check", "no_such_mod_xyz:Conv", "--layer", "Conv2d"], ["check", "Conv", "--layer", "Conv2d"],
                 ["check", "--layer", "ReLU"], ["check", F + "class_layers:ReLU", "--layer", "ReLU", "--param", "w"],
                 ["check", F + "class_layers:ReLU", "--layer", "ReLU", "--functions",
                  functions("relu_forward", "relu_backward")]):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("cnnref check: ") and "\n" not in err, err
