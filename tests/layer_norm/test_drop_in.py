"""infonorm.LayerNorm as a drop-in for torch.nn.LayerNorm, and replace_layer_norms on real
models: the same function, parameters, state_dict, modes, fused paths and TorchScript."""

import copy
import inspect

import pytest
import torch
from torch import nn

import infonorm
from infonorm import LayerNorm, layer_norm, replace_layer_norms

D = 16


def _copy_weights(source: nn.Module, target: nn.Module) -> None:
    with torch.no_grad():
        for p, q in zip(source.parameters(), target.parameters(), strict=True):
            q.copy_(p)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Weights away from LayerNorm's ones and zeros, so that a lost weight shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (1 if p.dim() == 1 else 0))
    return model


def _output_and_gradients(model: nn.Module, x: torch.Tensor, **kw):
    model.zero_grad()
    x = x.detach().clone().requires_grad_()
    y = model(x, **kw)
    (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
    return [y.detach(), x.grad] + [p.grad for p in model.parameters()]


def _assert_all_close(got, want, tolerance):
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        torch.testing.assert_close(g, w, rtol=tolerance, atol=tolerance)


# ---------------------------------------------------------------------------- the module


def test_signature_is_nn_layer_norms_then_the_options():
    ours = inspect.signature(LayerNorm.__init__).parameters
    torchs = inspect.signature(nn.LayerNorm.__init__).parameters
    assert [(p.name, p.default) for p in torchs.values()] == [
        (p.name, p.default) for p in list(ours.values())[: len(torchs)]
    ]
    options = list(ours.values())[len(torchs) :]
    assert [(p.name, p.default, p.kind) for p in options] == [
        ("scope", "position", inspect.Parameter.KEYWORD_ONLY),
        ("activation", "identity", inspect.Parameter.KEYWORD_ONLY),
    ]


@pytest.mark.parametrize(
    "args",
    [(D,), ((D,),), (D, 1e-6), (D, 1e-5, False), (D, 1e-5, True, False)],
    ids=["int", "tuple", "eps", "not-affine", "no-bias"],
)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_defaults_are_nn_layer_norm_bit_for_bit(args, mode):
    torchs = _randomize(nn.LayerNorm(*args))
    ours = LayerNorm(*args)
    ours.load_state_dict(torchs.state_dict())
    getattr(ours, mode)()
    getattr(torchs, mode)()
    x = torch.randn(3, 5, D) * 2 + 1
    got, want = _output_and_gradients(ours, x), _output_and_gradients(torchs, x)
    for g, w in zip(got, want, strict=True):
        assert torch.equal(g, w)
    assert repr(ours) == repr(torchs)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in torchs.named_parameters()]
    assert (ours.weight is None, ours.bias is None) == (torchs.weight is None, torchs.bias is None)


def test_state_dicts_load_both_ways():
    torchs, ours = _randomize(nn.LayerNorm(D)), LayerNorm(D, scope="layer", activation="relu")
    ours.load_state_dict(torchs.state_dict())
    assert list(ours.state_dict()) == ["weight", "bias"]
    back = nn.LayerNorm(D)
    back.load_state_dict(ours.state_dict())
    assert torch.equal(back.weight, torchs.weight)
    assert torch.equal(back.bias, torchs.bias)


def test_factory_arguments_and_reset():
    module = LayerNorm(D, device="cpu", dtype=torch.float64)
    assert module.weight.dtype == module.bias.dtype == torch.float64
    with torch.no_grad():
        module.weight.mul_(3)
        module.bias.add_(1)
    module.reset_parameters()
    assert torch.equal(module.weight, torch.ones(D, dtype=torch.float64))
    assert torch.equal(module.bias, torch.zeros(D, dtype=torch.float64))


@pytest.mark.parametrize("scope", ["layer", "position"])
def test_options_are_the_functional_layer_norm(scope):
    module = _randomize(LayerNorm(D, scope=scope, activation="gelu")).double()
    x = torch.randn(2, 5, D, dtype=torch.float64)
    expected = layer_norm(x, module.weight, module.bias, scope=scope, activation="gelu")
    torch.testing.assert_close(module(x), expected, rtol=0, atol=0)
    assert repr(module) == (
        "LayerNorm((16,), eps=1e-05, elementwise_affine=True, bias=True, "
        f"scope={scope!r}, activation='gelu')"
    )


def test_the_quiz_layer_is_one_argument_away():
    module = LayerNorm(D, eps=0.0, scope="layer", activation="relu")
    x = torch.randn(4, 5, D)
    mu, sigma = x.mean((-2, -1), keepdim=True), x.std((-2, -1), correction=0, keepdim=True)
    torch.testing.assert_close(module(x), torch.relu((x - mu) / sigma))


def test_the_fused_path_guard_follows_the_options():
    module = LayerNorm(D)
    assert not module._forward_pre_hooks
    module.activation = "relu"
    assert len(module._forward_pre_hooks) == 1
    module.scope = "layer"
    assert len(module._forward_pre_hooks) == 1
    module.activation, module.scope = "identity", "position"
    assert not module._forward_pre_hooks


# ---------------------------------------------------------------------------- fused paths


def _encoder_layer() -> nn.TransformerEncoderLayer:
    torch.manual_seed(0)
    return nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, batch_first=True)


@pytest.fixture
def fused_calls(monkeypatch):
    """The calls of nn.TransformerEncoderLayer's eval fast path, a fused op that reads the
    norms' weight, bias and eps and computes plain layer norm itself."""
    calls = []
    original = torch._transformer_encoder_layer_fwd

    def counted(*args):
        calls.append(args)
        return original(*args)

    monkeypatch.setattr(torch, "_transformer_encoder_layer_fwd", counted)
    return calls


def test_encoder_layer_fast_path_runs_with_the_default_and_gives_the_same(fused_calls):
    torchs = _encoder_layer().eval()
    ours = replace_layer_norms(copy.deepcopy(torchs))
    x = torch.randn(3, 5, D)
    with torch.no_grad():
        got, want = ours(x), torchs(x)
    assert len(fused_calls) == 2
    assert torch.equal(got, want)


@pytest.mark.parametrize("options", [{"scope": "layer"}, {"activation": "tanh"}])
def test_encoder_layer_fast_path_is_declined_where_it_would_compute_plain_layer_norm(
    fused_calls, options
):
    layer = _encoder_layer().eval()
    plain = copy.deepcopy(layer)
    layer.norm1 = _randomize(LayerNorm(D, **options))
    layer.norm2 = _randomize(LayerNorm(D, **options), seed=1)
    _copy_weights(layer.norm1, plain.norm1)
    _copy_weights(layer.norm2, plain.norm2)
    x = torch.randn(3, 5, D)
    with torch.no_grad():
        got = layer(x)
        assert not fused_calls
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            want = layer(x)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
        plain_out = plain(x)
    torch.testing.assert_close(got, want)
    # what the fast path would have computed instead
    assert (got - plain_out).abs().max() > 0.1


def _padded_batch():
    x = torch.randn(3, 5, D)
    padding = torch.tensor([[False] * 5, [False] * 3 + [True] * 2, [False] * 4 + [True]])
    return x, padding


@pytest.mark.parametrize("options", [{}, {"activation": "relu"}, {"scope": "layer"}])
def test_encoder_with_padding_gives_the_same_in_eval_as_the_unfused_path(options):
    # in eval mode nn.TransformerEncoder packs a padded batch into nested tensors
    torch.manual_seed(0)
    encoder = nn.TransformerEncoder(_encoder_layer(), 2, enable_nested_tensor=True)
    replace_layer_norms(encoder, **options).eval()
    x, padding = _padded_batch()
    with torch.no_grad():
        got = encoder(x, src_key_padding_mask=padding)
        torch.backends.mha.set_fastpath_enabled(False)
        try:
            want = encoder(x, src_key_padding_mask=padding)
        finally:
            torch.backends.mha.set_fastpath_enabled(True)
    real = ~padding
    torch.testing.assert_close(got[real], want[real], rtol=1e-5, atol=1e-5)


def test_whole_layer_statistics_refuse_nested_tensors():
    encoder = nn.TransformerEncoder(_encoder_layer(), 1, enable_nested_tensor=True)
    encoder.layers[0].norm1 = LayerNorm(D, scope="layer")
    x, padding = _padded_batch()
    with torch.no_grad(), pytest.raises(ValueError, match="enable_nested_tensor=False"):
        encoder.eval()(x, src_key_padding_mask=padding)


# ---------------------------------------------------------------------------- replace_layer_norms


def _mlp() -> nn.Sequential:
    torch.manual_seed(0)
    return _randomize(
        nn.Sequential(
            nn.Linear(8, D),
            nn.LayerNorm(D),
            nn.GELU(),
            nn.Linear(D, D),
            nn.LayerNorm(D),
            nn.ReLU(),
            nn.Linear(D, D),
            nn.LayerNorm(D),
            nn.GELU(approximate="tanh"),
            nn.Linear(D, 4),
        )
    )


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_mlp_with_fused_activations_computes_the_same(mode):
    torchs = _mlp()
    ours = replace_layer_norms(copy.deepcopy(torchs), activation=("gelu", "relu"))
    kinds = [(type(m).__name__, getattr(m, "activation", None)) for m in ours]
    assert kinds == [
        ("Linear", None),
        ("LayerNorm", "gelu"),
        ("Identity", None),
        ("Linear", None),
        ("LayerNorm", "relu"),
        ("Identity", None),
        ("Linear", None),
        ("LayerNorm", "identity"),  # tanh-approximated GELU has no fused form
        ("GELU", None),
        ("Linear", None),
    ]
    assert all(type(m) is not nn.LayerNorm for m in ours)
    assert list(ours.state_dict()) == list(torchs.state_dict())
    getattr(torchs, mode)()
    getattr(ours, mode)()
    x = torch.randn(32, 8)
    _assert_all_close(_output_and_gradients(ours, x), _output_and_gradients(torchs, x), 1e-5)


def test_one_activation_name_fuses_that_activation_only():
    model = replace_layer_norms(_mlp(), activation="relu")
    assert [getattr(m, "activation", None) for m in model if isinstance(m, LayerNorm)] == [
        "identity",
        "relu",
        "identity",
    ]
    assert isinstance(model[2], nn.GELU)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_transformer_encoder_computes_the_same(mode):
    torch.manual_seed(0)
    torchs = nn.TransformerEncoder(
        _encoder_layer(), 2, norm=nn.LayerNorm(D), enable_nested_tensor=False
    )
    _randomize(torchs)
    ours = replace_layer_norms(copy.deepcopy(torchs))
    assert sum(isinstance(m, LayerNorm) for m in ours.modules()) == 5
    assert not any(type(m) is nn.LayerNorm for m in ours.modules())
    getattr(torchs, mode)()
    getattr(ours, mode)()
    x = torch.randn(3, 7, D)
    mask = nn.Transformer.generate_square_subsequent_mask(7)
    got = _output_and_gradients(ours, x, mask=mask)
    _assert_all_close(got, _output_and_gradients(torchs, x, mask=mask), 1e-5)


def test_replacement_keeps_the_parameters_themselves():
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)).double()
    model[1].bias.requires_grad_(False)
    weight, bias = model[1].weight, model[1].bias
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    assert replace_layer_norms(model.eval()) is model
    new = model[1]
    assert isinstance(new, LayerNorm)
    assert new.weight is weight
    assert new.bias is bias
    assert not new.training
    assert new.weight.dtype == torch.float64
    # the optimizer built before the swap still trains the weight
    model(torch.randn(3, 4, dtype=torch.float64)).square().sum().backward()
    before = weight.detach().clone()
    optimizer.step()
    assert not torch.equal(weight, before)


def test_shared_layer_norms_and_subclasses():
    class Custom(nn.LayerNorm):
        def forward(self, x):
            return super().forward(x.float()).to(x.dtype)

    shared = nn.LayerNorm(4)
    model = nn.Sequential(shared, nn.ReLU(), nn.Sequential(shared), Custom(4))
    replace_layer_norms(model, activation="relu")
    assert model[0].activation == "relu"
    assert model[2][0].activation == "identity"  # not followed by the ReLU there
    assert model[0].weight is model[2][0].weight is shared.weight
    assert type(model[3]) is Custom


def test_a_model_that_cannot_be_converted_is_left_as_it_was():
    model = nn.Sequential(nn.LayerNorm(4), nn.Sequential(nn.LayerNorm((3, 4))))
    with pytest.raises(ValueError, match=r"^1\.0: nn\.LayerNorm over \(3, 4\)"):
        replace_layer_norms(model)
    assert type(model[0]) is nn.LayerNorm
    hooked = nn.Sequential(nn.LayerNorm(4))
    hooked[0].register_forward_hook(lambda *args: None)
    with pytest.raises(ValueError, match=r"^0: the nn\.LayerNorm has hooks"):
        replace_layer_norms(hooked)


def test_a_bare_layer_norm_is_returned_replaced():
    new = replace_layer_norms(nn.LayerNorm(4), scope="layer")
    assert isinstance(new, LayerNorm)
    assert new.scope == "layer"


# ---------------------------------------------------------------------------- scope="layer" leaks


class _TinyCausalLM(nn.Module):
    """Embeddings, a 2-layer pre-norm causal transformer, a final norm and a linear head."""

    def __init__(self, vocabulary=64, d=32):
        super().__init__()
        self.embed = nn.Embedding(vocabulary, d)
        self.position = nn.Parameter(torch.randn(64, d) * 0.1)
        layer = nn.TransformerEncoderLayer(d, 4, 2 * d, 0.0, batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocabulary)

    def forward(self, tokens):
        T = tokens.shape[-1]
        mask = nn.Transformer.generate_square_subsequent_mask(T)
        h = self.blocks(self.embed(tokens) + self.position[:T], mask=mask, is_causal=True)
        return self.head(self.norm(h))


@pytest.mark.parametrize("seed", [0, 4])
def test_whole_layer_statistics_let_the_last_token_move_earlier_positions(seed):
    tokens = torch.randint(0, 64, (1, 16), generator=torch.Generator().manual_seed(100 + seed))
    changed = tokens.clone()
    changed[0, -1] = (tokens[0, -1] + 1) % 64
    moved = {}
    for scope in ("position", "layer"):
        torch.manual_seed(seed)
        model = replace_layer_norms(_TinyCausalLM(), scope=scope).eval()
        with torch.no_grad():
            moved[scope] = (model(tokens) - model(changed))[0, :-1].abs().max().item()
    assert moved["position"] == 0
    # the figure in infonorm.layer_norm's docstrings (0.011 to 0.076 over seeds 0 to 4)
    assert moved["layer"] > 0.01


# ---------------------------------------------------------------------------- TorchScript, typing


@pytest.mark.parametrize("options", [{}, {"scope": "layer", "activation": "relu"}])
def test_torch_jit_script_compiles_the_module_to_the_operator(options):
    model = nn.Sequential(nn.Linear(8, D), _randomize(LayerNorm(D, **options)))
    scripted = torch.jit.script(model)
    assert "infonorm::layer_norm" in str(scripted.inlined_graph)
    x = torch.randn(3, 4, 8)
    _assert_all_close(_output_and_gradients(scripted, x), _output_and_gradients(model, x), 1e-6)


def test_typing_and_version():
    import importlib.metadata
    from pathlib import Path
    from typing import get_args, get_type_hints

    from infonorm import layer_norm as function
    from infonorm.layer_norm import Backend, Scope

    assert (Path(infonorm.__file__).parent / "py.typed").is_file()
    hints = get_type_hints(function)
    assert set(get_args(hints["scope"])) == {"layer", "position"}
    assert set(get_args(hints["backend"])) == {"auto", "torch", "aten", "triton"}
    assert len(get_args(hints["activation"])) == 6
    assert hints["scope"] is Scope
    assert hints["backend"] is Backend
    try:
        assert infonorm.__version__ == importlib.metadata.version("infonorm")
    except importlib.metadata.PackageNotFoundError:
        assert infonorm.__version__ == "0+unknown"
    assert "replace_layer_norms" in infonorm.__all__


def test_under_cpu_autocast_the_output_dtype_is_nn_layer_norms():
    # CPU autocast keeps layer norm in the input's dtype, for nn.LayerNorm and for ours
    x = torch.randn(4, 7, 16)
    theirs, ours = nn.LayerNorm(16), LayerNorm(16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for h in (x, x.bfloat16()):
            expected = theirs(h)
            got = ours(h)
            assert got.dtype == expected.dtype == h.dtype
            torch.testing.assert_close(got, expected)
