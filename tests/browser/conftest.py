import pytest

from tests.browser.chromium import chromium


@pytest.fixture(scope="session")
def browser():
    """One chromium for all browser tests; each test module opens its own contexts."""
    with chromium() as launched:
        yield launched
