from pathlib import Path

import pytest
from hypothesis import settings

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=200)
settings.load_profile("ci")

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The real outbreak series in ../shared/data; their absence fails the test that needs them."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"the shared data folder {SHARED_DATA} is missing: this test needs the real outbreak series "
                    "in ../shared/data beside the project")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Forget every compiled program after each test module. One process compiles hundreds of
    programs over the suite; kept, their machine code accumulates until XLA's CPU backend crashes
    (a segmentation fault in the last training test, release 0.2.3, that the module alone passes)."""
    yield
    from epigate.train import clear_compiled

    clear_compiled()
