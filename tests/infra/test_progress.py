"""How often long work speaks: each quarter and the end, or every step under --debug."""

from __future__ import annotations

import pytest

from farm.infra.progress import milestone


@pytest.mark.parametrize("total, spoken", [(15, [4, 8, 12, 15]), (961, [241, 481, 721, 961]),
                                           (8, [2, 4, 6, 8]), (2, [1, 2]), (1, [1])])
def test_each_quarter_and_the_last_step(total, spoken):
    assert [done for done in range(1, total + 1) if milestone(done, total)] == spoken


def test_verbose_speaks_at_every_step():
    assert all(milestone(done, 30, verbose=True) for done in range(1, 31))
