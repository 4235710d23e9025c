"""The one exit point: typed errors become one line and an exit code; extras are named."""

import pytest

from recap.errors import MissingExtra, require


def test_require_names_the_extra_to_install():
    with pytest.raises(MissingExtra) as info:
        require("recap_no_such_module.sub", "ml")
    assert str(info.value) == (
        "this needs the 'ml' extra (recap_no_such_module is not installed): pip install 'recap[ml]'"
    )
    assert info.value.exit_code == 5


def test_unknown_command_is_a_usage_error(cli):
    r = cli("frobnicate")
    assert r.exit_code == 2 and "No such command 'frobnicate'" in r.output
