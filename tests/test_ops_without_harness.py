"""The ops layer installs light: `import infonorm` and every public op work where the quiz
harness's requirements (matplotlib, rich, scikit-learn, latex2mathml) cannot be imported,
and the command line then says in one line which extra to install."""

import subprocess
import sys
import textwrap

# None in sys.modules: `import rich` raises ModuleNotFoundError and importlib.util.find_spec
# answers None, as if the package were not installed
BLOCK = textwrap.dedent(
    """
    import sys

    for name in ("matplotlib", "rich", "sklearn", "latex2mathml"):
        sys.modules[name] = None
    """
)

USE_EVERY_OP = textwrap.dedent(
    """
    import sys
    import torch
    import infonorm
    from infonorm import (
        LayerNorm, MMILoss, entropies, geometric, layer_norm, matched_accuracy,
        mutual_information, replace_layer_norms,
    )
    from infonorm import backprop, metrics
    from infonorm.layer_norm import layer_norm_backward

    torch.manual_seed(0)
    counts = torch.poisson(torch.full((200,), 3.0)).long()
    fit = geometric.fit(counts)
    geometric.cross_entropy(fit.mu, fit.lam)
    geometric.cross_entropy_grad(fit.mu, fit.lam)
    geometric.optimal_lambda(2.0)
    geometric.empirical_cross_entropy(counts, 0.5)
    geometric.distribution(0.5).sample((3,))

    z = torch.randn(16, 5, requires_grad=True)
    y = torch.randint(0, 5, (16,))
    (mutual_information(z, y) + MMILoss()(z, y)).backward()
    entropies(z.detach(), y)
    matched_accuracy(z.argmax(1), y)

    x = torch.randn(2, 3, 4, requires_grad=True)
    A, B = torch.ones(4, requires_grad=True), torch.zeros(4, requires_grad=True)
    layer_norm(x, A, B, scope="layer", activation="gelu").sum().backward()
    layer_norm_backward(torch.ones(2, 3, 4), x.detach(), A.detach(), B.detach(),
                        scope="position", activation="relu", eps=1e-5)
    LayerNorm(4)(x).sum().backward()
    replace_layer_norms(torch.nn.Sequential(torch.nn.LayerNorm(4)))(x)
    assert infonorm.__version__
    loaded = [m for m in ("matplotlib", "rich", "sklearn", "latex2mathml") if sys.modules[m]]
    assert not loaded, loaded
    print("ok")
    """
)


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=300
    )


def test_the_block_does_block():
    run = _run("import rich")
    assert run.returncode != 0
    assert "ModuleNotFoundError" in run.stderr


def test_every_op_works_without_the_harness_requirements():
    run = _run(USE_EVERY_OP)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"


def test_the_command_line_names_the_extra_to_install():
    run = _run("import sys\nfrom infonorm.quiz import main\nsys.exit(main(['fit', 'x.txt']))")
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("infonorm: error: the command line needs matplotlib, rich, ")
    assert lines[0].endswith("pip install 'infonorm[report]'")
