"""mutual_information as a PyTorch operator: no host synchronization and no shape that
depends on the labels (counted on CPU, as a CUDA device would see them), opcheck,
torch.compile without graph breaks or recompilation, torch.export, CUDA graphs."""

import math

import pytest
import torch

from infonorm.mutual_information import MMILoss, mutual_information
from tests.cases import requires_cuda
from tests.mutual_information.operator_log import OperatorLog

OPERATOR = torch.ops.infonorm.mutual_information.default
BACKWARD = torch.ops.infonorm.mutual_information_backward.default


def _batch(B, C, kind, seed=0):
    """Logits (or probabilities) with masked classes, and targets of every kind: labels
    repeated and alone, some ignored; or label rows."""
    g = torch.Generator().manual_seed(seed)
    z = 3 * torch.randn(B, C, generator=g)
    z[torch.rand(B, C, generator=g) < 0.1] = -math.inf
    z[:, 0] = 0.0  # every row keeps a class
    if kind == "rows":
        return z, torch.softmax(torch.randn(B, 5, generator=g), 1), False
    y = torch.randint(0, C, (B,), generator=g)
    y[: B // 4] = y[0]  # one label of many examples, the others mostly alone when C is large
    y[B // 2 :: 7] = -100
    if kind == "probs":
        return torch.softmax(z, 1), y, True
    return z, y, False


@pytest.mark.parametrize("C", [10, 1000, 32768])
@pytest.mark.parametrize("kind", ["indices", "rows", "probs", "indices, triton"])
def test_forward_and_backward_never_wait_for_the_device(C, kind):
    backend = "torch"
    if kind == "indices, triton":
        pytest.importorskip("infonorm.kernels.mutual_information")
        kind, backend = "indices", "triton"
    # validate=False is what CUDA tensors get by default: device-side assertions only
    x, target, probs = _batch(64, C, kind)
    x.requires_grad_()
    with OperatorLog() as log:
        information = mutual_information(x, target, probs=probs, backend=backend, validate=False)
        information.backward()
    assert log.synchronizing() == []
    # the log saw inside the operators: the passes over the input, and the assertions
    names = set(log.names)
    assert {"infonorm.mutual_information.default", "aten._assert_async.msg"} <= names
    assert "infonorm.mutual_information_backward.default" in names
    if backend == "torch":
        work = ("aten.exp", "aten._softmax", "aten.addmm", "aten.index_add")
        assert any(name.startswith(work) for name in names)


def test_the_count_sees_host_reads_and_mask_indexing():
    z, y, _ = _batch(16, 10, "indices")
    # validate=True (the CPU default) reads values on the host: it is counted
    with OperatorLog() as log:
        mutual_information(z, y, validate=True)
    assert "aten.is_nonzero.default" in log.synchronizing()
    with OperatorLog() as log:
        z[z > 0].sum()
        torch.bincount(y.clamp_min(0), minlength=10)
        torch.unique(y)
    assert log.synchronizing() == [
        "aten.index.Tensor",
        "aten.bincount.default",
        "aten._unique2.default",
    ]


def test_rows_of_S_follow_the_labels_counts():
    # C = 12 > B = 9: R = min(9 // 2, 12) = 4 rows; labels 3 (twice) and 5 (three times)
    # take rows 0 and 1 in the order of the labels, 1 and 2 are alone, two are ignored
    y = torch.tensor([3, 5, 1, 3, -100, 5, 2, 5, -100])
    z = torch.randn(9, 12)
    _, Lam, ln_s, lse, rows, N = OPERATOR(z, y, False, -100, "torch", True)
    assert rows.tolist() == [0, 1, -2, 0, -1, 1, -2, 1, -1]
    # Λ's 4 rows, then G's rows of ignored (0) and single examples (ln N − ln s)
    assert Lam.shape == (6, 12)
    assert (Lam[4] == 0).all()
    torch.testing.assert_close(Lam[5], torch.log(N).float() - ln_s)
    assert ln_s.shape == (12,)
    torch.testing.assert_close(lse, torch.logsumexp(z, 1))
    assert N.item() == 7
    # ignore_index = 5 leaves out label 5's examples; label 0 (twice) now comes first
    _, Lam, _, _, rows, N = OPERATOR(z, y.where(y != -100, 0), False, 5, "torch", True)
    assert rows.tolist() == [1, -1, -2, 1, 0, -1, -2, -1, 0]
    assert N.item() == 6
    # C = 6 <= B: every label its own row, and no logsumexp is kept
    _, Lam, _, lse, rows, N = OPERATOR(z[:, :6], y, False, -100, "torch", True)
    assert rows.tolist() == [3, 5, 1, 3, -1, 5, 2, 5, -1]
    assert Lam.shape == (6 + 2, 6)
    assert lse.shape == (0,)


@pytest.mark.parametrize("kind", ["indices", "rows", "probs"])
@pytest.mark.parametrize(("B", "C"), [(12, 7), (6, 9)], ids=["C<=B", "C>B"])
def test_opcheck(kind, B, C):
    x, target, probs = _batch(B, C, kind)
    x.requires_grad_()
    for validate in (True, False):
        torch.library.opcheck(OPERATOR, (x, target, probs, -100, "torch", validate))
    _, *saved = OPERATOR(x.detach(), target, probs, -100, "torch", True)
    grad = torch.tensor(0.7)
    # the layout's single examples (C > B) are what backward is told of
    args = (grad, x.detach(), target, *saved, probs, "torch", C > B)
    torch.library.opcheck(BACKWARD, args)


class _CountingBackend:
    """A torch.compile backend (aot_eager) that keeps every graph it is given."""

    def __init__(self):
        self.graphs = []

    def __call__(self, graph_module, example_inputs):
        self.graphs.append(graph_module)
        return torch._dynamo.backends.debugging.aot_eager(graph_module, example_inputs)


def test_compile_captures_mmi_loss_whole_and_never_recompiles_for_new_labels():
    torch._dynamo.reset()
    backend = _CountingBackend()
    loss = MMILoss()
    step = torch.compile(loss, backend=backend, fullgraph=True)
    g = torch.Generator().manual_seed(1)
    for labels in (100, 7, 2, 100, 50):  # label sets of every size, one example alone or none
        z = torch.randn(64, 100, generator=g).requires_grad_()
        y = torch.randint(0, labels, (64,), generator=g)
        value = step(z, y)
        value.backward()
        expected_z = z.detach().clone().requires_grad_()
        expected = loss(expected_z, y)
        expected.backward()
        torch.testing.assert_close(value, expected, rtol=0, atol=0)
        torch.testing.assert_close(z.grad, expected_z.grad, rtol=0, atol=0)
    assert len(backend.graphs) == 1
    targets = [node.target for node in backend.graphs[0].graph.nodes]
    assert targets.count(OPERATOR._overloadpacket) + targets.count(OPERATOR) == 1


def test_compile_of_mutual_information_with_every_option():
    torch._dynamo.reset()
    backend = _CountingBackend()

    @torch.compile(backend=backend, fullgraph=True)
    def information(z, y):
        return mutual_information(z, y, ignore_index=3, validate=False)

    z = torch.randn(2, 9, 5, requires_grad=True)  # (B, C, d1): every position an example
    y = torch.randint(0, 9, (2, 5))
    torch.testing.assert_close(
        information(z, y), mutual_information(z, y, ignore_index=3), rtol=0, atol=0
    )
    assert len(backend.graphs) == 1


def test_export_captures_one_operator_and_runs_on_new_labels():
    g = torch.Generator().manual_seed(2)
    z, y = torch.randn(32, 100, generator=g), torch.randint(0, 100, (32,), generator=g)
    program = torch.export.export(MMILoss(), (z, y))
    calls = [node.target for node in program.graph.nodes if node.op == "call_function"]
    assert OPERATOR in calls
    assert not [t for t in calls if "softmax" in str(t) or "index_add" in str(t)]
    y_new = torch.randint(0, 5, (32,), generator=g)
    torch.testing.assert_close(program.module()(z, y_new), MMILoss()(z, y_new))


def test_validate_false_asserts_on_the_device_with_the_argument_named():
    z = torch.randn(6, 4)
    with pytest.raises(RuntimeError, match=r"^target holds a label outside"):
        mutual_information(z, torch.tensor([0, 1, 2, 4, 0, 1]), validate=False)
    with pytest.raises(RuntimeError, match=r"^input holds NaN, \+inf"):
        mutual_information(z.where(z > 0, math.nan), torch.arange(6) % 4, validate=False)
    with pytest.raises(RuntimeError, match=r"^input rows must sum to 1"):
        mutual_information(torch.full((6, 4), 0.3), torch.arange(6) % 4, probs=True, validate=False)
    with pytest.raises(RuntimeError, match=r"^target: every example is ignore_index"):
        mutual_information(z, torch.full((6,), -100), validate=False)


@requires_cuda
@pytest.mark.gpu
def test_a_training_step_on_cuda_never_synchronizes_and_graphs_capture_it():
    model = torch.nn.Linear(32, 100).cuda()
    loss = MMILoss()
    x = torch.randn(256, 32, device="cuda")
    y = torch.randint(0, 100, (256,), device="cuda")
    loss(model(x), y).backward()  # warm up: kernels compiled, caches filled
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        loss(model(x), y).backward()
    finally:
        torch.cuda.set_sync_debug_mode("default")
    graph = torch.cuda.CUDAGraph()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            model.zero_grad(set_to_none=False)
            loss(model(x), y).backward()
    torch.cuda.current_stream().wait_stream(stream)
    model.zero_grad(set_to_none=False)
    with torch.cuda.graph(graph):
        value = loss(model(x), y)
        value.backward()
    y.copy_(torch.randint(0, 100, (256,), device="cuda"))
    graph.replay()
    expected = loss(model(x), y)
    torch.testing.assert_close(value, expected)
