import warnings

import pytest
import torch

from daam_widget import testing

warnings.filterwarnings("ignore", category=FutureWarning)
torch.set_num_threads(1)


def _quiet(pipe):
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def sd1():
    return _quiet(testing.sd_pipeline("sd1"))


@pytest.fixture(scope="module")
def sd2():
    return _quiet(testing.sd_pipeline("sd2"))


@pytest.fixture(scope="module")
def sdxl():
    return _quiet(testing.sdxl_pipeline())


@pytest.fixture(params=["sd1", "sd2", "sdxl"])
def any_pipe(request):
    return request.getfixturevalue(request.param)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)
