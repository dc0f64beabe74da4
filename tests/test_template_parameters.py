import json

import pytest

from mixlib.chapters.contents import SUMMARY_CHAPTERS
from mixlib.chapters.template_parameters import summary_parameters


def test_text_parameters_are_parsed_as_papermill_passes_them():
    assert summary_parameters('["baseline", "mixup"]', "[0, 1]", '{"pilot": {}}') == (
        ["baseline", "mixup"],
        [0, 1],
        {"pilot": {}},
    )
    assert summary_parameters(["a"], [2], {}) == (["a"], [2], {})


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        ((["a"], "foo", {}), "seeds"),
        ((["a"], "[-1]", {}), "seeds"),
        ((["a"], "[0, 0]", {}), "seeds"),
        (("baseline", [0], {}), "configurations"),
        (("[1, 2]", [0], {}), "configurations"),
        ((["a"], [0], "[1]"), "profile_sizing"),
        ((["a"], [0], "{bad"), "profile_sizing"),
    ],
)
def test_a_bad_parameter_is_named(arguments, named):
    with pytest.raises(ValueError, match=named):
        summary_parameters(*arguments)


@pytest.mark.parametrize("chapter", SUMMARY_CHAPTERS, ids=lambda c: c.name)
def test_every_summary_template_checks_its_parameters_first(chapter):
    cells = json.loads(chapter.template.read_text())["cells"]
    first_code = next(
        "".join(c["source"])
        for i, c in enumerate(cells)
        if i and "parameters" in cells[i - 1]["metadata"].get("tags", [])
    )
    assert "summary_parameters(configurations, seeds, profile_sizing)" in first_code
