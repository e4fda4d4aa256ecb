import torch

from tempered.models import build_model
from tempered.models.papernot_cnn import PapernotCNN


def test_logit_shape_and_layer_sizes(repo_config):
    model = build_model(repo_config["models"]["cnn"]).eval()
    x = torch.rand(5, 1, 28, 28)
    assert model(x).shape == (5, 10)
    assert model.penultimate(model.features(x)).shape == (5, 200)
    assert model.features(x).shape == (5, 64, 4, 4)


def test_parameter_count_matches_the_architecture():
    convs = (1 * 9 + 1) * 32 + (32 * 9 + 1) * 32 + (32 * 9 + 1) * 64 + (64 * 9 + 1) * 64
    dense = (1024 + 1) * 200 + (200 + 1) * 200 + (200 + 1) * 10
    assert sum(p.numel() for p in PapernotCNN().parameters()) == convs + dense


def test_channels_last_gives_the_same_logits():
    torch.manual_seed(0)
    model = PapernotCNN().eval()
    x = torch.rand(8, 1, 28, 28)
    reference = model(x)
    model_cl = model.to(memory_format=torch.channels_last)
    torch.testing.assert_close(model_cl(x.contiguous(memory_format=torch.channels_last)), reference)
