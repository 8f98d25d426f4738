"""SlotBatchNorm1d (PacGAN's per-slot batch norm in G) against nn.BatchNorm1d applied to each slot alone."""
import pytest
import torch
from torch import nn

import gankit
from gankit.models import build_generator
from gankit.models.toy import SlotBatchNorm1d


def slot_bn(width, slots, momentum):
    torch.manual_seed(0)
    m = SlotBatchNorm1d(width, slots, momentum)
    with torch.no_grad():
        m.weight.uniform_(0.5, 1.5)
        m.bias.uniform_(-0.5, 0.5)
    return m


def test_one_slot_is_batch_norm():
    m = slot_bn(6, 1, 0.05)
    ref = nn.BatchNorm1d(6, momentum=0.05)
    ref.load_state_dict(m.state_dict())
    x = torch.randn(40, 6) * 3 + 1
    for _ in range(2):
        torch.testing.assert_close(m(x), ref(x))
    torch.testing.assert_close(m.state_dict(), ref.state_dict())
    m.eval(), ref.eval()
    torch.testing.assert_close(m(x), ref(x))


def test_each_slot_is_normalised_alone_and_the_population_moves_by_the_slots_mean():
    slots, width, momentum = 4, 5, 0.05
    m = slot_bn(width, slots, momentum)
    x = torch.randn(100 * slots, width) * torch.arange(1.0, slots + 1).repeat(100)[:, None]  # slots differ in scale
    y = m(x)
    means, variances = [], []
    for j in range(slots):
        ref = nn.BatchNorm1d(width, momentum=momentum)
        ref.load_state_dict({**m.state_dict(), "running_mean": torch.zeros(width), "running_var": torch.ones(width),
                             "num_batches_tracked": torch.tensor(0)})
        torch.testing.assert_close(y[j::slots], ref(x[j::slots]))  # slot j: samples j, j + m, j + 2m, ...
        means.append(ref.running_mean)
        variances.append(ref.running_var)
    torch.testing.assert_close(m.running_mean, torch.stack(means).mean(0))
    torch.testing.assert_close(m.running_var, torch.stack(variances).mean(0))
    assert int(m.num_batches_tracked) == 1
    m.eval()
    torch.testing.assert_close(m(x), (x - m.running_mean) / torch.sqrt(m.running_var + 1e-5) * m.weight + m.bias)


def test_the_pacgan_preset_g_uses_it_and_other_archs_refuse_it():
    cfg = gankit.preset("pacgan-ring8").model
    G = build_generator(cfg, (2,))
    norms = [mod for mod in G.modules() if isinstance(mod, SlotBatchNorm1d)]
    assert len(norms) == 4 and all(n.slots == 4 and n.momentum == 0.05 for n in norms)
    gan = build_generator(gankit.preset("gan-ring8").model, (2,))
    assert [mod.momentum for mod in gan.modules() if isinstance(mod, nn.BatchNorm1d)] == [0.05] * 4
    with pytest.raises(gankit.GankitError, match="g_norm_slots 4 has no effect on the dcgan family.*: toy$"):
        build_generator(gankit.preset("dcgan-mnist").with_overrides({"model.g_norm_slots": 4}).model, (1, 28, 28))


def test_gradients_equal_those_of_batch_norm_on_each_slot_alone():
    slots, width = 4, 5
    m = slot_bn(width, slots, 0.05)
    x = (torch.randn(30 * slots, width, dtype=torch.float64) * 2 + 1).requires_grad_()
    m.double()
    upstream = torch.randn_like(x)
    (m(x) * upstream).sum().backward()
    xr = x.detach().clone().requires_grad_()
    ref = nn.BatchNorm1d(width, momentum=0.05).double()
    ref.load_state_dict(m.state_dict())
    out = torch.cat([ref(xr[j::slots]) for j in range(slots)])  # slot-major order
    order = torch.cat([torch.arange(j, x.shape[0], slots) for j in range(slots)])
    (out * upstream[order]).sum().backward()
    torch.testing.assert_close(x.grad, xr.grad)
    torch.testing.assert_close(m.weight.grad, ref.weight.grad)
    torch.testing.assert_close(m.bias.grad, ref.bias.grad)
