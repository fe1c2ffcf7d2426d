import pytest
import torch

from harness.core.presets import PRESETS, ModelConfig
from harness.model import GPT, flops_per_token, param_count, param_groups


def test_param_count_matches_the_module():
    cfg = ModelConfig(n_layer=3, n_head=4, d_model=32, seq_len=16, vocab_size=100)
    model = GPT(cfg)
    assert param_count(cfg) == sum(p.numel() for p in model.parameters())
    assert model.lm_head.weight is model.wte.weight  # tied


def test_gpt2_small_has_124m_parameters():
    assert param_count(PRESETS["gpt2-124m"].model) == 124_475_904  # nanoGPT's figure with vocab 50304


def test_flops_per_token_hand_worked():
    # L=2, d=8, T=4, V=10. Params: wte 80, wpe 32, per block 12*64 + 13*8 = 872, ln_f 16.
    cfg = ModelConfig(n_layer=2, n_head=2, d_model=8, seq_len=4, vocab_size=10)
    assert param_count(cfg) == 80 + 32 + 2 * 872 + 16 == 1872
    # N excludes the position embedding: 1872 - 32 = 1840. 6N = 11040; attention 12*L*d*T = 12*2*8*4 = 768.
    assert flops_per_token(cfg) == 11040 + 768


def test_forward_loss_and_decay_groups():
    cfg = ModelConfig(n_layer=1, n_head=2, d_model=16, seq_len=8, vocab_size=32)
    torch.manual_seed(0)
    model = GPT(cfg)
    idx, targets = torch.randint(0, 32, (2, 8)), torch.randint(0, 32, (2, 8))
    loss = model(idx, targets)
    # A fresh GPT-2 init predicts nearly uniformly: loss close to log V.
    assert loss.item() == pytest.approx(torch.log(torch.tensor(32.0)).item(), abs=0.1)
    assert model(idx).shape == (2, 8, 32)
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


def test_same_seed_same_init():
    cfg = PRESETS["tiny"].model
    torch.manual_seed(7)
    a = GPT(cfg).state_dict()
    torch.manual_seed(7)
    b = GPT(cfg).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
