r"""Check a backward pass written by hand, line by line, against autograd.

A derivation is one Python file, written close to paper:

    from infonorm.backprop import relu, relu_prime, sum_over

    T, I = 8, 6
    axes = {"t": T, "i": I}                     # the named axes and their sizes
    inputs = {"L": "t i", "A": "i", "B": "i"}   # each input's axes

    def forward(L, A, B):                       # named steps, in order
        mu = sum_over("t i", L) / (T * I)
        sigma = (sum_over("t i", (L - mu) ** 2) / (T * I)).sqrt()
        h = (L - mu) / sigma
        Lt = relu(A * h + B)
        return Lt                               # the output: the last step

    def backward(L, A, B, mu, sigma, h, Lt):    # adjoint updates, in order
        r"\sigma.grad = -\sum_{t,i} \tilde{L}.grad[t, i] \sigma'(A[i]h[t, i] + B[i]) ..."
        sigma.grad = -sum_over("t i", Lt.grad * relu_prime(A * h + B) * A * (L - mu) / sigma**2)
        ...

Shapes follow numpy broadcasting over the named axes in the order of `axes`: an input over
"i" alone has shape (I,) and broadcasts along t; one over "t" alone has shape (T, 1).
`sum_over("t", x)` is Σ_t x (the axis kept out of the result); a quantity that does not
vary along t counts T times, as in index notation. torch's own `.sum(0)`, `@`, `.mean()`
work as well.

What is checked. Every name whose adjoint the backward mentions (`mu.grad`), every input
and the output is a node of the graph; the other steps (`h` above) are abbreviations the
graph sees through. An update `n.grad += e` that reads the adjoints of the steps S claims
the contribution of the edges s → n, s in S: s.grad times ∂s/∂n with every other argument
of s held fixed (each node a separate leaf). Each line is evaluated alone, reading the
true adjoints, on several random draws (float64, inputs of both signs, away from the kinks
of `relu`), twice per draw: at the forward's values, and with every step node other than
the steps S moved off its forward value (μ off the mean of L, say; inputs keep their draw,
which is random already), so that a term that
vanishes at the forward's values only (Σ(μ − L) = 0) cannot hide a wrong coefficient. The
lines then run in order as a program, from the output's adjoint, and the adjoints they
leave are compared with autograd's; central finite differences of ⟨out.grad, out⟩ check
autograd itself. `assert a == b` in the backward states a fact at the forward's values
(the quiz's "= 0") and is checked there.

A derivation file is user code run as Python, with the permissions of whoever runs the
check: it is not a sandbox. Check only files you would run.
"""

from __future__ import annotations

import ast
import builtins
import contextvars
import math
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import CodeType
from typing import Any

import torch

from infonorm._threads import one_thread

__all__ = [
    "Derivation",
    "DerivationError",
    "Input",
    "Report",
    "check",
    "load",
    "onehot",
    "parse",
    "positive",
    "relu",
    "relu_prime",
    "sum_over",
]

F64 = torch.float64
DRAWS = 3
# a line holds where |printed − true| <= EXACT · max(1, largest |true|), at every point
EXACT = 1e-10
# finite differences of the whole along random unit directions v (as gradcheck's fast mode):
# (f(x + δv) − f(x − δv))/2δ against ⟨∇f, v⟩; an error in any entry of ∇f shows along a
# random v, for 2 evaluations of f per direction instead of 2 per entry
FINITE_DIFFERENCE_STEP = 1e-6
FINITE_DIFFERENCE_DIRECTIONS = 4
# relative to |∇f|: the differencing error of a 1e-6 step, plus the rounding of f itself,
# about ulp(|f|)/(2 step) ≤ 1e-10 |f|, with a margin of 10
FINITE_DIFFERENCE_TOLERANCE = 1e-6
FINITE_DIFFERENCE_ROUNDING = 1e-9
# a draw is kept when every argument of relu is at least this far from 0 (relative to its
# root mean square): finite differences then never straddle the kink
KINK_MARGIN = 1e-3
# step nodes moved off the forward are scaled entrywise by e^{±u}, u in [0.1, 0.3]: each moves by
# 10–35 % and keeps its sign, so σ stays positive and a variance stays a variance
PERTURBATION = (0.1, 0.3)
EXTRA_ATTEMPTS = 10  # draws that may be rejected (near a kink) before the forward is blamed
SHOWN = 4  # entries of a tensor shown in reports

AT_FORWARD = "at the forward's values"
OFF_FORWARD = "off the forward's values"
_ADJOINT = "__adjoint__"
_TEMPLATE = "a derivation file defines inputs, forward() and backward(), and axes if named"


class DerivationError(ValueError):
    """A derivation file that cannot be checked: `path:line: message`."""

    def __init__(self, path: str, line: int | None, message: str):
        self.path, self.line, self.message = path, line, message
        where = f"{path}:{line}" if line else path
        super().__init__(f"{where}: {message}")


# ------------------------------------------------------------------ what a derivation file uses


@dataclass(frozen=True)
class Input:
    """An input's axes ("t i") or shape ((4, 5)), and how it is drawn: "normal" (both
    signs), "positive" or "onehot"."""

    axes: str | tuple[int, ...]
    kind: str = "normal"

    @property
    def differentiable(self) -> bool:
        return self.kind != "onehot"


def positive(axes: str | tuple[int, ...]) -> Input:
    """An input drawn > 0 (log-normal): a variance, a scale."""
    return Input(axes, "positive")


def onehot(axes: str | tuple[int, ...]) -> Input:
    """An input of one-hot rows along its last axis: labels, held fixed (data, not a node)."""
    return Input(axes, "onehot")


_AXES: contextvars.ContextVar[dict[str, int] | None] = contextvars.ContextVar("axes", default=None)
_KINKS: contextvars.ContextVar[list[float] | None] = contextvars.ContextVar("kinks", default=None)


def _watch_kink(z: torch.Tensor) -> None:
    """Record how near 0 (the kink of relu) the entries of z come, when a check listens."""
    margins = _KINKS.get()
    if margins is not None and z.numel():
        z = z.detach()
        scale = z.square().mean().sqrt().item()
        margins.append(z.abs().min().item() / scale if scale > 0 else 0.0)


def relu(z: torch.Tensor) -> torch.Tensor:
    """σ(z) = max(z, 0), torch's own (autograd differentiates it)."""
    _watch_kink(z)
    return torch.relu(z)


def relu_prime(z: torch.Tensor) -> torch.Tensor:
    """σ'(z) of relu: 1 where z > 0, else 0."""
    _watch_kink(z)
    return (z > 0).to(z.dtype)


def sum_over(axes: str, x: torch.Tensor | float) -> torch.Tensor:
    """Σ over the named axes ("t", "t i"): the index notation's sum.

    x is aligned with the derivation's axes from the right (broadcasting); along a summed
    axis on which x does not vary, Σ counts each value once per index (Σ_t A[i] = T A[i]).
    """
    sizes = _AXES.get()
    if sizes is None:
        raise RuntimeError("sum_over works inside a derivation being checked")
    names = axes.split()
    unknown = [a for a in names if a not in sizes]
    if unknown:
        raise ValueError(f"sum_over: no axis {unknown[0]!r} (axes: {' '.join(sizes)})")
    x = torch.as_tensor(x, dtype=F64)
    order = list(sizes)
    if x.dim() > len(order):
        raise ValueError(f"sum_over: a tensor of shape {tuple(x.shape)} has more axes than {order}")
    x = x.reshape((1,) * (len(order) - x.dim()) + tuple(x.shape))
    dims = [order.index(a) for a in names]
    copies = math.prod(sizes[order[d]] for d in dims if x.shape[d] == 1)
    return _canonical(x.sum(dim=dims, keepdim=True) * copies)


def _canonical(x: torch.Tensor) -> torch.Tensor:
    # leading axes of size 1 change nothing under broadcasting: drop them
    while x.dim() and x.shape[0] == 1:
        x = x[0]
    return x


# ------------------------------------------------------------------------------ the parsed file


@dataclass(frozen=True)
class Step:
    """A named step of the forward: `name = expression`."""

    name: str
    line: int
    source: str
    code: CodeType
    names: frozenset[str]  # the forward's names it reads
    node: bool = False  # its adjoint is mentioned (or it is the output)
    args: tuple[str, ...] = ()  # the nodes it reads, seeing through abbreviations


@dataclass(frozen=True)
class Update:
    """An adjoint update of the backward: `target.grad (=|+=|-=) expression`."""

    number: int  # 1, 2, … in the order of the backward
    line: int
    target: str
    op: str
    source: str
    code: CodeType
    reads: tuple[str, ...]  # the adjoints it reads: the steps whose edges into target it claims
    values: tuple[str, ...]  # the forward's names it reads as values
    printed: str = ""  # the text or LaTeX written just before it


@dataclass(frozen=True)
class Assertion:
    """`assert left == right` in the backward: a fact at the forward's values."""

    line: int
    source: str
    left: CodeType
    right: CodeType
    reads: tuple[str, ...]
    after: int  # the number of the update it follows
    printed: str = ""


@dataclass(frozen=True, eq=False)
class Derivation:
    """A parsed derivation file: axes, inputs, forward steps, backward updates."""

    path: str
    axes: dict[str, int]
    inputs: dict[str, Input]
    steps: tuple[Step, ...]
    updates: tuple[Update, ...]
    assertions: tuple[Assertion, ...]
    namespace: dict[str, Any] = field(repr=False)

    @property
    def output(self) -> str:
        return self.steps[-1].name

    @property
    def nodes(self) -> list[str]:
        return [*self.inputs, *(s.name for s in self.steps if s.node)]

    @property
    def node_steps(self) -> list[Step]:
        return [s for s in self.steps if s.node]

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)

    def consumers(self, name: str) -> list[str]:
        """The node steps that read `name`: the edges its adjoint collects."""
        return [s.name for s in self.node_steps if name in s.args]

    def claim(self, update: Update) -> str:
        """What an update claims: "A.grad" when it reads every edge into A, else the edges."""
        if sorted(update.reads) == sorted(self.consumers(update.target)):
            return f"{update.target}.grad"
        return f"{update.target}.grad via " + " + ".join(update.reads)

    def shape(self, name: str) -> tuple[int, ...]:
        """The shape of an input, from its axes (or as given)."""
        axes = self.inputs[name].axes
        if not isinstance(axes, str):
            return tuple(_canonical(torch.empty(axes)).shape)
        names = axes.split()
        full = tuple(self.axes[a] if a in names else 1 for a in self.axes)
        return tuple(_canonical(torch.empty(full)).shape)

    def with_update(self, number: int, expression: str) -> Derivation:
        """The same derivation with update `number`'s right-hand side replaced."""
        old = self.updates[number - 1]
        try:
            tree = ast.parse(expression.strip(), self.path, mode="eval")
        except SyntaxError as error:
            raise DerivationError(self.path, old.line, f"syntax error: {error.msg}") from None
        ast.increment_lineno(tree, old.line - 1)
        source = f"{old.target}.grad {old.op} {expression.strip()}"
        new = _update(self, number, old.target, old.op, tree.body, source, old.printed)
        updates = tuple(new if u.number == number else u for u in self.updates)
        return _with_nodes(replace(self, updates=updates))


def load(path: str | Path) -> Derivation:
    """Read and parse a derivation file (runs it as Python: see the module's note)."""
    path = Path(path)
    if not path.exists():
        raise DerivationError(str(path), None, "no such file")
    if path.is_dir():
        raise DerivationError(str(path), None, "is a folder, not a file")
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise DerivationError(str(path), None, f"cannot be read ({error.strerror})") from None
    try:
        source = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DerivationError(str(path), None, "not a UTF-8 text file") from None
    return parse(source, str(path))


def parse(source: str, path: str = "<derivation>") -> Derivation:
    """Parse a derivation from its source text; `path` names it in messages."""
    if "\0" in source:
        raise DerivationError(path, None, "not a text file (it holds NUL bytes)")
    try:
        tree = ast.parse(source, path)
    except SyntaxError as error:
        raise DerivationError(path, error.lineno, f"syntax error: {error.msg}") from None
    namespace: dict[str, Any] = {"__name__": "__derivation__", "__file__": path}
    try:
        exec(compile(tree, path, "exec"), namespace)
    except (Exception, SystemExit) as error:  # the file's own code failed: name its line
        raise _user_error(error, path, None) from None
    functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    axes = _axes(namespace, path, _assignment_line(tree, "axes"))
    inputs = _inputs(namespace, axes, path, _assignment_line(tree, "inputs"))
    for name in ("forward", "backward"):
        if name not in functions:
            raise DerivationError(path, None, f"defines no {name}() ({_TEMPLATE})")
    draft = Derivation(path, axes, inputs, (), (), (), namespace)
    draft = replace(draft, steps=_forward(functions["forward"], draft, source))
    updates, assertions = _backward(functions["backward"], draft, source)
    return _with_nodes(replace(draft, updates=updates, assertions=assertions))


def _assignment_line(tree: ast.Module, name: str) -> int | None:
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return node.lineno
    return None


def _axes(namespace: dict[str, Any], path: str, line: int | None) -> dict[str, int]:
    axes = namespace.get("axes", {})
    if not isinstance(axes, dict) or not all(
        isinstance(k, str) and k.isidentifier() and _is_size(v) for k, v in axes.items()
    ):
        raise DerivationError(path, line, "axes must map axis names to sizes >= 1: {'t': 8}")
    return dict(axes)


def _is_size(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 1


def _inputs(
    namespace: dict[str, Any], axes: dict[str, int], path: str, line: int | None
) -> dict[str, Input]:
    raw = namespace.get("inputs")
    if raw is None:
        raise DerivationError(path, None, f"defines no inputs, e.g. {{'L': 't i'}} ({_TEMPLATE})")
    if not isinstance(raw, dict) or not raw:
        raise DerivationError(path, line, "inputs must map each input's name to its axes")
    inputs = {}
    for name, spec in raw.items():
        spec = spec if isinstance(spec, Input) else Input(spec)
        if isinstance(spec.axes, list):
            spec = Input(tuple(spec.axes), spec.kind)
        if not (isinstance(name, str) and name.isidentifier()) or not (
            isinstance(spec.axes, str)
            or (isinstance(spec.axes, tuple) and all(_is_size(n) for n in spec.axes))
        ):
            raise DerivationError(
                path,
                line,
                f"inputs[{name!r}] must be axes ('t i'), a shape ((4, 5)), positive(…) or "
                "onehot(…)",
            )
        if isinstance(spec.axes, str):
            names = spec.axes.split()
            unknown = [a for a in names if a not in axes]
            if unknown:
                raise DerivationError(path, line, f"input {name}: no axis {unknown[0]!r} in axes")
            if names != [a for a in axes if a in names]:
                raise DerivationError(
                    path,
                    line,
                    f"input {name}: its axes {spec.axes!r} must follow the order of axes",
                )
        else:
            names = list(spec.axes)
        if spec.kind not in ("normal", "positive", "onehot"):
            raise DerivationError(path, line, f"input {name}: no kind {spec.kind!r}")
        if spec.kind == "onehot" and not names:
            raise DerivationError(path, line, f"input {name}: onehot(…) needs at least one axis")
        inputs[name] = spec
    return inputs


def _source(source: str, node: ast.AST) -> str:
    return " ".join((ast.get_source_segment(source, node) or ast.unparse(node)).split())


def _loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _check_names(expr: ast.expr, known: set[str], d: Derivation, line: int) -> None:
    """Refuse a name that is neither known here, nor the file's, nor a builtin."""
    bound = {
        n.id for n in ast.walk(expr) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    }
    for node in ast.walk(expr):
        if isinstance(node, ast.Lambda):
            a = node.args
            bound |= {
                x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg) if x
            }
    for name in sorted(_loaded_names(expr) - bound - known):
        if name in d.namespace or hasattr(builtins, name):
            continue
        later = next((s for s in d.steps if s.name == name), None)
        if later is not None:
            raise DerivationError(
                d.path, line, f"{name} is read before its step (line {later.line})"
            )
        raise DerivationError(d.path, line, f"unknown name {name!r}")


def _forward(fn: ast.FunctionDef, d: Derivation, source: str) -> tuple[Step, ...]:
    params = [a.arg for a in fn.args.args]
    if params and sorted(params) != sorted(d.inputs):
        raise DerivationError(
            d.path,
            fn.lineno,
            f"forward's parameters ({', '.join(params)}) are not the inputs "
            f"({', '.join(d.inputs)})",
        )
    steps: list[Step] = []
    defined = dict.fromkeys(d.inputs)
    body = list(fn.body)
    returned = body.pop() if body and isinstance(body[-1], ast.Return) else None
    for stmt in body:
        if _is_text(stmt):
            continue
        if not (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            raise DerivationError(
                d.path, stmt.lineno, "the forward holds only named steps: name = expression"
            )
        name = stmt.targets[0].id
        if name in defined:
            first = f"line {defined[name]}" if defined[name] else "an input"
            raise DerivationError(d.path, stmt.lineno, f"{name} is defined twice ({first})")
        if name.startswith("__"):
            raise DerivationError(d.path, stmt.lineno, f"{name}: names starting __ are reserved")
        if any(isinstance(n, ast.Attribute) and n.attr == "grad" for n in ast.walk(stmt.value)):
            raise DerivationError(d.path, stmt.lineno, "the forward cannot read an adjoint (.grad)")
        names = frozenset(_loaded_names(stmt.value) & defined.keys())
        code = compile(ast.Expression(stmt.value), d.path, "eval")
        steps.append(Step(name, stmt.lineno, _source(source, stmt.value), code, names))
        defined[name] = stmt.lineno
    if not steps:
        raise DerivationError(d.path, fn.lineno, "the forward has no steps")
    exprs = {stmt.lineno: stmt.value for stmt in body if isinstance(stmt, ast.Assign)}
    with_steps = replace(d, steps=tuple(steps))
    for i, step in enumerate(steps):
        known = {*d.inputs, *(s.name for s in steps[:i])}
        _check_names(exprs[step.line], known, with_steps, step.line)
    if returned is not None and not (
        isinstance(returned.value, ast.Name) and returned.value.id == steps[-1].name
    ):
        raise DerivationError(
            d.path,
            returned.lineno,
            f"the forward returns its last step, {steps[-1].name}, or nothing",
        )
    return tuple(steps)


def _is_text(stmt: ast.stmt) -> bool:
    return (
        isinstance(stmt, ast.Expr)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    )


def _backward(
    fn: ast.FunctionDef, d: Derivation, source: str
) -> tuple[tuple[Update, ...], tuple[Assertion, ...]]:
    forward_names = {*d.inputs, *(s.name for s in d.steps)}
    for param in fn.args.args:
        if param.arg not in forward_names:
            raise DerivationError(
                d.path, fn.lineno, f"backward's parameter {param.arg} is not a name of the forward"
            )
    updates: list[Update] = []
    assertions: list[Assertion] = []
    printed = ""
    for stmt in fn.body:
        if _is_text(stmt):
            printed = " ".join(stmt.value.value.split())
            continue
        if isinstance(stmt, ast.Assert):
            assertions.append(_assertion(stmt, d, source, updates, printed))
            continue
        target, op, value = _update_parts(stmt, d.path)
        number = len(updates) + 1
        updates.append(
            _update(d, number, target, op, value, _source(source, stmt), printed, stmt.lineno)
        )
        printed = ""
    if not updates:
        raise DerivationError(d.path, fn.lineno, "the backward has no adjoint updates")
    return tuple(updates), tuple(assertions)


def _update_parts(stmt: ast.stmt, path: str) -> tuple[str, str, ast.expr]:
    ops = {ast.Add: "+=", ast.Sub: "-="}
    if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
        target, op = stmt.targets[0], "="
    elif isinstance(stmt, ast.AugAssign) and type(stmt.op) in ops:
        target, op = stmt.target, ops[type(stmt.op)]
    else:
        raise DerivationError(
            path,
            stmt.lineno,
            "the backward holds adjoint updates (x.grad = …, x.grad += …), the text printed "
            "for each (a string before it) and assert a == b",
        )
    if not (
        isinstance(target, ast.Attribute)
        and target.attr == "grad"
        and isinstance(target.value, ast.Name)
    ):
        raise DerivationError(path, stmt.lineno, "an update assigns to name.grad")
    return target.value.id, op, stmt.value


class _Adjoints(ast.NodeTransformer):
    """`x.grad` → `__adjoint__("x")`, collecting the names whose adjoints are read."""

    def __init__(self, path: str, forward_names: set[str]):
        self.path, self.forward_names, self.reads = path, forward_names, []

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if node.attr != "grad":
            return self.generic_visit(node)
        if not isinstance(node.value, ast.Name):
            raise DerivationError(self.path, node.lineno, ".grad applies to a name of the forward")
        name = node.value.id
        if name not in self.forward_names:
            raise DerivationError(
                self.path,
                node.lineno,
                f"{name}.grad: {name} is not an input or a step of the forward",
            )
        if name not in self.reads:
            self.reads.append(name)
        call = ast.Call(ast.Name(_ADJOINT, ast.Load()), [ast.Constant(name)], [])
        return ast.copy_location(call, node)


def _rewrite(expr: ast.expr, d: Derivation) -> tuple[CodeType, tuple[str, ...], tuple[str, ...]]:
    forward_names = {*d.inputs, *(s.name for s in d.steps)}
    _check_names(expr, forward_names, d, expr.lineno)
    visitor = _Adjoints(d.path, forward_names)
    expr = ast.fix_missing_locations(visitor.visit(expr))
    order = [*d.inputs, *(s.name for s in d.steps)]
    values = tuple(n for n in order if n in _loaded_names(expr))
    return compile(ast.Expression(expr), d.path, "eval"), tuple(visitor.reads), values


def _update(
    d: Derivation,
    number: int,
    target: str,
    op: str,
    value: ast.expr,
    source: str,
    printed: str,
    line: int | None = None,
) -> Update:
    line = line or value.lineno
    if target not in d.inputs and target not in {s.name for s in d.steps}:
        raise DerivationError(
            d.path, line, f"{target}.grad: {target} is not an input or a step of the forward"
        )
    code, reads, values = _rewrite(value, d)
    if not reads:
        raise DerivationError(
            d.path,
            line,
            f"{target}.grad {op} … reads no adjoint: a contribution to {target}.grad is the "
            f"adjoint of a step that reads {target} times a derivative ({d.output}.grad * …)",
        )
    return Update(number, line, target, op, source, code, reads, values, printed)


def _assertion(
    stmt: ast.Assert, d: Derivation, source: str, updates: list[Update], printed: str
) -> Assertion:
    test = stmt.test
    if not (
        isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)
    ):
        raise DerivationError(d.path, stmt.lineno, "an assert in the backward states a == b")
    left, left_reads, _ = _rewrite(test.left, d)
    right, right_reads, _ = _rewrite(test.comparators[0], d)
    reads = tuple(dict.fromkeys(left_reads + right_reads))
    if not updates:
        raise DerivationError(
            d.path, stmt.lineno, "an assert states a fact about the update before it: none yet"
        )
    after = updates[-1]
    text = printed or after.printed
    return Assertion(stmt.lineno, _source(source, stmt), left, right, reads, after.number, text)


def _with_nodes(d: Derivation) -> Derivation:
    """Mark the steps whose adjoints are mentioned as nodes; check each claimed edge exists."""
    mentioned = {u.target for u in d.updates} | {r for u in d.updates for r in u.reads}
    mentioned |= {r for a in d.assertions for r in a.reads}
    nodes = set(d.inputs) | mentioned | {d.output}
    steps: list[Step] = []
    args: dict[str, tuple[str, ...]] = {}

    def reached(names: frozenset[str]) -> set[str]:
        out: set[str] = set()
        for n in names:
            out |= {n} if n in nodes else set(args[n])
        return out

    order = [*d.inputs, *(s.name for s in d.steps)]
    for s in d.steps:
        found = reached(s.names)
        args[s.name] = tuple(n for n in order if n in found)
        steps.append(replace(s, node=s.name in nodes, args=args[s.name]))
    d = replace(d, steps=tuple(steps))
    for u in d.updates:
        for source in u.reads:
            if source in d.inputs:
                raise DerivationError(
                    d.path, u.line, f"{source} is an input: no step's adjoint flows from it"
                )
            if u.target not in args[source]:
                read = ", ".join(args[source]) or "no node"
                raise DerivationError(
                    d.path,
                    u.line,
                    f"{source}.grad cannot flow into {u.target}.grad: {source} (line "
                    f"{d.step(source).line}) does not read {u.target} (it reads {read})",
                )
    return d


# ----------------------------------------------------------------------------- evaluation


def _user_error(error: BaseException, path: str, line: int | None) -> DerivationError:
    """The error as one line, at the deepest line of the file it passed through."""
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == path]
    if frames:
        line = frames[-1].lineno or line
    if isinstance(error, NameError) and getattr(error, "name", None):
        return DerivationError(path, line, f"unknown name {error.name!r}")
    message = " ".join(str(error).split("\n")[0].split())
    if isinstance(error, RuntimeError) and ("must match" in message or "broadcast" in message):
        return DerivationError(path, line, f"shapes do not broadcast: {message}")
    return DerivationError(path, line, f"{type(error).__name__}: {message}")


class _Evaluator:
    """Evaluates the file's expressions on given values, with errors naming the file's line."""

    def __init__(self, d: Derivation):
        self.d = d

    def eval(
        self,
        code: CodeType,
        values: dict[str, torch.Tensor],
        line: int,
        adjoint: Callable[[str], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        scope = {**self.d.namespace, **values, _ADJOINT: adjoint}
        try:
            value = eval(code, scope)
        except DerivationError:
            raise
        except Exception as error:
            raise _user_error(error, self.d.path, line) from None
        if isinstance(value, int | float) and not isinstance(value, bool):
            return torch.tensor(float(value), dtype=F64)
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            kind = type(value).__name__ if not isinstance(value, torch.Tensor) else value.dtype
            raise DerivationError(self.d.path, line, f"gives {kind}, not a floating tensor")
        return _canonical(value.to(F64))

    def complete(self, nodes: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every name of the forward: the nodes as given, the abbreviations from them."""
        values = dict(nodes)
        for s in self.d.steps:
            if not s.node:
                values[s.name] = self.eval(s.code, values, s.line)
        return values

    def step(self, s: Step, nodes: dict[str, torch.Tensor]) -> torch.Tensor:
        """s at the given values of the nodes (the abbreviations before it recomputed)."""
        values = dict(nodes)
        for earlier in self.d.steps:
            if earlier.name == s.name:
                break
            if not earlier.node:
                values[earlier.name] = self.eval(earlier.code, values, earlier.line)
        return self.eval(s.code, values, s.line)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        values = dict(inputs)
        for s in self.d.steps:
            values[s.name] = self.eval(s.code, values, s.line)
        return values

    def vjp(
        self, s: Step, nodes: dict[str, torch.Tensor], grad: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """grad · ∂s/∂n for each node n that s reads, the others held fixed."""
        leaves = {n: nodes[n].detach().clone().requires_grad_() for n in s.args}
        if not leaves:
            return {}
        value = self.step(s, {**nodes, **leaves})
        if not value.requires_grad:
            raise DerivationError(
                self.d.path,
                s.line,
                f"{s.name} = {s.source} is not differentiable: autograd finds no derivative "
                f"in {', '.join(s.args)}",
            )
        # ⟨grad, s⟩ differentiated: the same vector-Jacobian product as grad_outputs=grad,
        # without the symbolic-shape machinery (and its sympy import, ~1 s) that it loads
        grads = torch.autograd.grad((grad * value).sum(), list(leaves.values()), allow_unused=True)
        return {
            n: torch.zeros_like(nodes[n]) if g is None else g
            for n, g in zip(leaves, grads, strict=True)
        }


@contextmanager
def _scope(d: Derivation) -> Iterator[None]:
    """The derivation's axes for sum_over, and one intra-op thread: the draws are tiny, and
    on a machine whose cores are busy a pool of threads costs milliseconds per op (a check
    measured 0.05 s on one thread and 2–5 s on two, with 2 busy cores)."""
    token = _AXES.set(d.axes)
    try:
        with one_thread():
            yield
    finally:
        _AXES.reset(token)


@dataclass
class _Draw:
    """One random draw: the forward's values, the output's adjoint, the true adjoints."""

    values: dict[str, torch.Tensor]
    output_grad: torch.Tensor
    adjoints: dict[str, torch.Tensor]  # each node's total adjoint
    edges: dict[tuple[str, str], torch.Tensor]  # (step, node) → step.grad · ∂step/∂node
    directions: list[dict[str, torch.Tensor]]  # unit directions v over the drawn inputs
    differences: list[float]  # the central difference of ⟨out.grad, out⟩ along each v
    scale: float  # |∇f| over the inputs the directions span
    finite_difference_tolerance: float  # relative to |∇f|
    autograd_error: float = math.nan  # finite_difference_error(adjoints), set by _draw

    def finite_difference_error(self, grads: dict[str, torch.Tensor]) -> float:
        """max over v of |difference − ⟨grads, v⟩| / |∇f|: grads against the differences."""
        worst = max(
            abs(diff - sum((grads[n] * v[n]).sum().item() for n in v))
            for v, diff in zip(self.directions, self.differences, strict=True)
        )
        return math.inf if math.isnan(worst) else worst / self.scale


def _draw_input(spec: Input, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    if spec.kind == "positive":
        return torch.exp(0.5 * torch.randn(shape, generator=g, dtype=F64))
    if spec.kind == "onehot":
        classes = torch.randint(shape[-1], shape[:-1], generator=g)
        return torch.nn.functional.one_hot(classes, shape[-1]).to(F64)
    return torch.randn(shape, generator=g, dtype=F64)


class _RejectedDrawError(Exception):
    """A draw that cannot be used: its step and why."""

    def __init__(self, step: Step, why: str):
        self.step, self.why = step, why


def _draw(ev: _Evaluator, g: torch.Generator) -> _Draw:
    d = ev.d
    inputs = {n: _draw_input(spec, d.shape(n), g) for n, spec in d.inputs.items()}
    values = dict(inputs)
    for s in d.steps:
        margins: list[float] = []
        token = _KINKS.set(margins)
        try:
            values[s.name] = ev.eval(s.code, values, s.line)
        finally:
            _KINKS.reset(token)
        if not torch.isfinite(values[s.name]).all():
            raise _RejectedDrawError(s, "is NaN or infinite")
        if margins and min(margins) < KINK_MARGIN:
            raise _RejectedDrawError(s, "falls on a kink of relu")
    output_grad = torch.randn(values[d.output].shape, generator=g, dtype=F64)
    adjoints, edges = _true_adjoints(ev, values, output_grad)
    for n, a in adjoints.items():
        if not torch.isfinite(a).all():
            s = next(s for s in d.node_steps if n in s.args)
            raise _RejectedDrawError(s, "has a NaN or infinite derivative")
    directions = [_direction(d, g) for _ in range(FINITE_DIFFERENCE_DIRECTIONS)]
    differences, magnitude = _directional_differences(ev, inputs, output_grad, directions)
    scale = _norm([adjoints[n] for n in directions[0]])
    tolerance = FINITE_DIFFERENCE_TOLERANCE + FINITE_DIFFERENCE_ROUNDING * magnitude / scale
    draw = _Draw(values, output_grad, adjoints, edges, directions, differences, scale, tolerance)
    draw.autograd_error = draw.finite_difference_error(adjoints)
    if draw.autograd_error > tolerance:
        raise _RejectedDrawError(_rough_step(ev, values, adjoints), "is not differentiable")
    return draw


def _direction(d: Derivation, g: torch.Generator) -> dict[str, torch.Tensor]:
    """A random unit vector over the inputs drawn at random (one-hot data held fixed)."""
    v = {
        n: torch.randn(d.shape(n), generator=g, dtype=F64)
        for n, spec in d.inputs.items()
        if spec.differentiable
    }
    norm = _norm(list(v.values()))
    return {n: t / norm for n, t in v.items()}


def _norm(tensors: list[torch.Tensor]) -> float:
    return math.sqrt(sum(t.square().sum().item() for t in tensors)) or 1e-300


def _directional_differences(
    ev: _Evaluator,
    inputs: dict[str, torch.Tensor],
    output_grad: torch.Tensor,
    directions: list[dict[str, torch.Tensor]],
) -> tuple[list[float], float]:
    """(f(x + δv) − f(x − δv))/2δ along each v, f = ⟨out.grad, out⟩, and the largest |f|
    met, which bounds the rounding of the differences."""
    out = ev.d.output
    magnitude = 0.0

    def f(sign: float, v: dict[str, torch.Tensor]) -> float:
        nonlocal magnitude
        at = {
            n: x + sign * FINITE_DIFFERENCE_STEP * v[n] if n in v else x for n, x in inputs.items()
        }
        value = (output_grad * ev.forward(at)[out]).sum().item()
        magnitude = max(magnitude, abs(value))
        return value

    differences = [(f(1.0, v) - f(-1.0, v)) / (2 * FINITE_DIFFERENCE_STEP) for v in directions]
    return differences, magnitude


def _true_adjoints(
    ev: _Evaluator, values: dict[str, torch.Tensor], output_grad: torch.Tensor
) -> tuple[dict[str, torch.Tensor], dict[tuple[str, str], torch.Tensor]]:
    """Backpropagation by autograd one step at a time: each step's arguments are leaves."""
    d = ev.d
    adjoints = {n: torch.zeros_like(values[n]) for n in d.nodes}
    adjoints[d.output] = output_grad
    edges = {}
    for s in reversed(d.node_steps):
        for n, contribution in ev.vjp(s, values, adjoints[s.name]).items():
            edges[(s.name, n)] = contribution
            adjoints[n] = adjoints[n] + contribution
    return adjoints, edges


def _central_differences(
    f: Callable[[dict[str, torch.Tensor]], float], at: dict[str, torch.Tensor], names: list[str]
) -> dict[str, torch.Tensor]:
    grads = {}
    for n in names:
        grad = torch.empty(at[n].numel(), dtype=F64)
        for j in range(at[n].numel()):
            step = torch.zeros(at[n].numel(), dtype=F64)
            step[j] = FINITE_DIFFERENCE_STEP
            up = {**at, n: at[n] + step.view(at[n].shape)}
            down = {**at, n: at[n] - step.view(at[n].shape)}
            grad[j] = (f(up) - f(down)) / (2 * FINITE_DIFFERENCE_STEP)
        grads[n] = grad.view(at[n].shape)
    return grads


def _rough_step(ev: _Evaluator, values: dict[str, torch.Tensor], adjoints) -> Step:
    """The first step whose own finite differences disagree with autograd's derivative."""
    for s in ev.d.node_steps:
        grad = adjoints[s.name]

        def f(at: dict[str, torch.Tensor], s: Step = s, grad: torch.Tensor = grad) -> float:
            return (grad * ev.step(s, at)).sum().item()

        fd = _central_differences(f, values, list(s.args))
        exact = ev.vjp(s, values, grad)
        if any(_relative(fd[n], exact[n]) > FINITE_DIFFERENCE_TOLERANCE for n in s.args):
            return s
    return ev.d.steps[-1]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item() / _scale([b]) if a.numel() else 0.0


def _scale(tensors) -> float:
    """The largest |entry| of the tensors (a tiny number for none or all zeros)."""
    return max((t.abs().max().item() for t in tensors if t.numel()), default=0.0) or 1e-300


def _draws(ev: _Evaluator, count: int, seed: int) -> list[_Draw]:
    g = torch.Generator().manual_seed(seed)
    draws: list[_Draw] = []
    rejected: list[_RejectedDrawError] = []
    while len(draws) < count:
        if len(rejected) > EXTRA_ATTEMPTS:
            worst = max(rejected, key=lambda r: sum(x.step is r.step for x in rejected))
            hint = (
                " (inputs are drawn of both signs; positive('…') draws an input > 0)"
                if "NaN" in worst.why
                else ""
            )
            raise DerivationError(
                ev.d.path,
                worst.step.line,
                f"the forward is not differentiable where the draws fall: {worst.step.name} = "
                f"{worst.step.source} {worst.why} on {len(rejected)} of "
                f"{len(rejected) + len(draws)} draws{hint}",
            )
        try:
            draws.append(_draw(ev, g))
        except _RejectedDrawError as why:
            rejected.append(why)
    return draws


# ------------------------------------------------------------------------------ the checks


@dataclass
class AssertionResult:
    assertion: Assertion
    holds: bool
    max_error: float
    left: torch.Tensor  # at the forward's values of the first draw
    right: torch.Tensor

    def to_dict(self) -> dict[str, Any]:
        return {
            "file_line": self.assertion.line,
            "code": self.assertion.source,
            "printed": self.assertion.printed,
            "holds": self.holds,
            "max_error": self.max_error,
            "left": _shown(self.left),
            "right": _shown(self.right),
        }


@dataclass
class LineResult:
    """One update checked alone, reading the true adjoints."""

    update: Update
    claims: str  # what the line's value is compared with: "A.grad", "mu.grad via Lt"
    holds: bool
    max_error: float
    tolerance: float  # at the point of the largest error relative to its tolerance
    max_error_at_forward: float
    max_error_off_forward: float
    value: torch.Tensor  # the line's value at the forward's values of the first draw
    true: torch.Tensor  # the true contribution there
    worst: dict[str, Any]  # where the largest error (relative to its tolerance) occurred
    # the first point where it does not hold, at the forward's values before off them
    failure: dict[str, Any] | None = None
    reason: str = ""  # a shape that does not fit the target
    assertions: list[AssertionResult] = field(default_factory=list)
    # set by the run in order
    chained_max_error: float = 0.0
    inherits_from: list[int] = field(default_factory=list)
    passes_error_to: list[int] = field(default_factory=list)
    reads_early: list[dict[str, Any]] = field(default_factory=list)

    @property
    def holds_with_assertions(self) -> bool:
        return self.holds and all(a.holds for a in self.assertions)

    def to_dict(self) -> dict[str, Any]:
        u = self.update
        return {
            "number": u.number,
            "file_line": u.line,
            "code": u.source,
            "printed": u.printed,
            "target": u.target,
            "op": u.op,
            "reads": list(u.reads),
            "values": list(u.values),
            "claims": self.claims,
            "holds": self.holds_with_assertions,
            "holds_alone": self.holds,
            "max_error": self.max_error,
            "tolerance": self.tolerance,
            "max_error_at_forward": self.max_error_at_forward,
            "max_error_off_forward": self.max_error_off_forward,
            "shape": list(self.true.shape),
            "value": _shown(self.value),
            "true": _shown(self.true),
            "worst": self.worst,
            "failure": self.failure,
            "reason": self.reason,
            "assertions": [a.to_dict() for a in self.assertions],
            "chained_max_error": self.chained_max_error,
            "inherits_from": self.inherits_from,
            "passes_error_to": self.passes_error_to,
            "reads_early": self.reads_early,
        }


@dataclass
class ChainResult:
    """The updates run in order from the output's adjoint, against autograd's adjoints."""

    holds: bool
    errors: dict[str, float]  # per updated node: largest |left by the lines − autograd|
    tolerances: dict[str, float]
    values: dict[str, torch.Tensor]  # first draw
    true: dict[str, torch.Tensor]
    read_before_written: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "errors": self.errors,
            "tolerances": self.tolerances,
            "values": {n: _shown(v) for n, v in self.values.items()},
            "true": {n: _shown(v) for n, v in self.true.items()},
            "read_before_written": self.read_before_written,
        }


@dataclass
class FiniteDifferenceResult:
    """Central differences of ⟨out.grad, out⟩ along random directions over the inputs,
    against autograd's gradient and the one the lines leave."""

    holds: bool
    autograd_error: float  # the largest |difference − ⟨∇f, v⟩| / |∇f|
    lines_error: float | None  # the lines run in order, same measure (None: no input updated)
    step: float = FINITE_DIFFERENCE_STEP
    tolerance: float = FINITE_DIFFERENCE_TOLERANCE
    directions: int = FINITE_DIFFERENCE_DIRECTIONS

    def to_dict(self) -> dict[str, Any]:
        return {
            "holds": self.holds,
            "autograd_relative_error": self.autograd_error,
            "lines_relative_error": self.lines_error,
            "step": self.step,
            "tolerance": self.tolerance,
            "directions_per_draw": self.directions,
        }


@dataclass
class Report:
    """Every line's verdict, the lines run in order, finite differences of the whole."""

    derivation: Derivation
    lines: list[LineResult]
    chain: ChainResult
    finite_differences: FiniteDifferenceResult
    draws: list[dict[str, torch.Tensor]]  # the forward's values of each draw
    adjoints: list[dict[str, torch.Tensor]]  # autograd's adjoint of every node, each draw
    seed: int

    @property
    def holds(self) -> bool:
        return (
            all(line.holds_with_assertions for line in self.lines)
            and self.chain.holds
            and self.finite_differences.holds
        )

    def line(self, number: int) -> LineResult:
        return self.lines[number - 1]

    @property
    def summary(self) -> str:
        wrong = [line for line in self.lines if not line.holds_with_assertions]
        parts = [
            f"{len(self.lines) - len(wrong)} of {len(self.lines)} lines hold"
            + (
                " (" + ", ".join(f"line {w.update.number} does not" for w in wrong) + ")"
                if wrong
                else ""
            )
        ]
        inherited = [line for line in self.lines if line.inherits_from]
        if inherited:
            parts.append(
                "inherited: "
                + ", ".join(
                    f"line {i.update.number} from {', '.join(map(str, i.inherits_from))}"
                    for i in inherited
                )
            )
        parts.append(
            "the lines in order give autograd's adjoints"
            if self.chain.holds
            else "the lines in order do not give autograd's adjoints ("
            + ", ".join(
                f"{n}.grad off by {e:.3g}"
                for n, e in self.chain.errors.items()
                if e > self.chain.tolerances[n]
            )
            + ")"
        )
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.derivation.path,
            "holds": self.holds,
            "draws": len(self.draws),
            "seed": self.seed,
            "output": self.derivation.output,
            "nodes": self.derivation.nodes,
            "lines": [line.to_dict() for line in self.lines],
            "chain": self.chain.to_dict(),
            "finite_differences": self.finite_differences.to_dict(),
            "summary": self.summary,
        }


def _shown(t: torch.Tensor) -> float | list[float]:
    """A scalar, or the first few entries of a tensor (row-major)."""
    return t.item() if t.numel() == 1 else t.flatten()[:SHOWN].tolist()


def _max_abs_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a − b| over the entries, inf when it is NaN (a line that gives NaN is wrong)."""
    error = (a - b).abs().max().item()
    return math.inf if math.isnan(error) else error


def _tolerance(true: torch.Tensor) -> float:
    return EXACT * max(1.0, true.abs().max().item() if true.numel() else 0.0)


def _fit(value: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor | None:
    """value broadcast to a target of `shape`, or None when it does not fit without growing."""
    try:
        if torch.broadcast_shapes(value.shape, shape) != torch.Size(shape):
            return None
    except RuntimeError:
        return None
    return value.expand(shape)


def _off_forward(ev: _Evaluator, draw: _Draw, sources: tuple[str, ...], g: torch.Generator):
    """The nodes moved off the forward, each a free leaf, but the steps in `sources`,
    recomputed from their (moved) arguments."""
    d = ev.d
    low, high = PERTURBATION
    nodes = {n: draw.values[n] for n in d.nodes}
    for s in d.node_steps:
        if s.name not in sources:
            u = low + (high - low) * torch.rand(nodes[s.name].shape, generator=g, dtype=F64)
            sign = torch.randint(2, nodes[s.name].shape, generator=g) * 2 - 1
            nodes[s.name] = nodes[s.name] * torch.exp(sign * u)
    for s in d.node_steps:
        if s.name in sources:
            nodes[s.name] = ev.step(s, nodes)
    return nodes


def _signed(u: Update, value: torch.Tensor) -> torch.Tensor:
    return -value if u.op == "-=" else value


def _check_line(ev: _Evaluator, u: Update, draws: list[_Draw], g: torch.Generator) -> LineResult:
    d = ev.d
    target_shape = tuple(draws[0].values[u.target].shape)
    points = []  # (draw index, where, value, true)
    for k, draw in enumerate(draws):

        def adjoint(name: str, draw: _Draw = draw) -> torch.Tensor:
            return draw.adjoints[name]

        true = sum(draw.edges[(s, u.target)] for s in u.reads)
        value = _signed(u, ev.eval(u.code, draw.values, u.line, adjoint))
        points.append((k, AT_FORWARD, value, true))
        nodes = _off_forward(ev, draw, u.reads, g)
        values = ev.complete(nodes)
        true_off = sum(ev.vjp(d.step(s), nodes, draw.adjoints[s])[u.target] for s in u.reads)
        value_off = _signed(u, ev.eval(u.code, values, u.line, adjoint))
        points.append((k, OFF_FORWARD, value_off, true_off))
    errors = {AT_FORWARD: 0.0, OFF_FORWARD: 0.0}
    worst, worst_ratio, reason = None, -1.0, ""
    failures: dict[str, dict[str, Any]] = {}
    for k, where, value, true in points:
        fitted = _fit(value, target_shape)
        if fitted is None:
            reason = (
                f"gives shape {tuple(value.shape)} where {u.target}.grad has shape {target_shape}"
            )
            error = math.inf
        else:
            error = _max_abs_error(fitted, true)
        errors[where] = max(errors[where], error)
        ratio = error / _tolerance(true)
        point = {
            "draw": k + 1,
            "where": where,
            "value": _shown(value),
            "true": _shown(true),
            "error": error,
            "tolerance": _tolerance(true),
        }
        if ratio > worst_ratio:
            worst, worst_ratio = point, ratio
        if ratio > 1:
            failures.setdefault(where, point)
    assert worst is not None
    _, _, value0, true0 = points[0]
    return LineResult(
        update=u,
        claims=d.claim(u),
        holds=worst_ratio <= 1.0,
        max_error=max(errors.values()),
        tolerance=worst["tolerance"],
        max_error_at_forward=errors[AT_FORWARD],
        max_error_off_forward=errors[OFF_FORWARD],
        value=value0,
        true=true0,
        worst=worst,
        failure=failures.get(AT_FORWARD, failures.get(OFF_FORWARD)),
        reason=reason,
    )


def _check_assertion(ev: _Evaluator, a: Assertion, draws: list[_Draw]) -> AssertionResult:
    holds, worst = True, 0.0
    first = None
    for draw in draws:

        def adjoint(name: str, draw: _Draw = draw) -> torch.Tensor:
            return draw.adjoints[name]

        left = ev.eval(a.left, draw.values, a.line, adjoint)
        right = ev.eval(a.right, draw.values, a.line, adjoint)
        try:
            error = _max_abs_error(left, right)
        except RuntimeError as e:
            raise _user_error(e, ev.d.path, a.line) from None
        holds = holds and error <= _tolerance(right)
        worst = max(worst, error)
        first = first or (left, right)
    assert first is not None
    return AssertionResult(a, holds, worst, *first)


def _run_in_order(
    ev: _Evaluator, lines: list[LineResult], draws: list[_Draw]
) -> tuple[ChainResult, list[dict[str, torch.Tensor]]]:
    """The updates as a program: each reads the adjoints the lines before it left. Also
    the adjoints the program leaves, each draw."""
    d = ev.d
    targets = list(dict.fromkeys(u.target for u in d.updates))
    errors = dict.fromkeys(targets, 0.0)
    tolerances = dict.fromkeys(targets, 0.0)
    chain_holds = True
    read_before: dict[tuple[int, str], dict[str, Any]] = {}
    first: tuple[dict, dict] | None = None
    left_by_draw = []
    for draw in draws:
        grads: dict[str, torch.Tensor] = {d.output: draw.output_grad}
        contributors: dict[str, list[int]] = {d.output: []}
        tainted: set[int] = set()
        for line in lines:
            u = line.update

            def adjoint(name: str, grads=grads, u=u, draw=draw) -> torch.Tensor:
                if name not in grads:
                    read_before[(u.number, name)] = {"line": u.number, "reads": f"{name}.grad"}
                    return torch.zeros_like(draw.values[name])
                return grads[name]

            value = _signed(u, ev.eval(u.code, draw.values, u.line, adjoint))
            true = sum(draw.edges[(s, u.target)] for s in u.reads)
            fitted = _fit(value, tuple(draw.values[u.target].shape))
            error = math.inf if fitted is None else _max_abs_error(fitted, true)
            line.chained_max_error = max(line.chained_max_error, error)
            off = error > _tolerance(true)
            sources = {j for r in u.reads for j in contributors.get(r, []) if j in tainted}
            if not line.holds or off:
                tainted.add(u.number)
            if line.holds and off:
                line.inherits_from = sorted(set(line.inherits_from) | sources)
            if fitted is None:
                continue
            if u.op == "=" or u.target not in grads:
                grads[u.target] = fitted.clone()
                contributors[u.target] = [u.number]
            else:
                grads[u.target] = grads[u.target] + fitted
                contributors[u.target].append(u.number)
        left_by_draw.append(grads)
        for n in targets:
            left = grads.get(n, torch.zeros_like(draw.adjoints[n]))
            error = _max_abs_error(left, draw.adjoints[n])
            errors[n] = max(errors[n], error)
            chain_holds = chain_holds and error <= _tolerance(draw.adjoints[n])
            tolerances[n] = max(tolerances[n], _tolerance(draw.adjoints[n]))
        if first is None:
            first = (
                {n: grads.get(n, torch.zeros_like(draw.adjoints[n])) for n in targets},
                {n: draw.adjoints[n] for n in targets},
            )
    for line in lines:
        line.passes_error_to = [
            other.update.number for other in lines if line.update.number in other.inherits_from
        ]
        line.reads_early = [
            {"reads": f"{r}.grad", "before_line": later.number}
            for r in line.update.reads
            for later in d.updates
            if later.number > line.update.number and later.target == r
        ]
    assert first is not None
    chain = ChainResult(
        chain_holds, errors, tolerances, first[0], first[1], list(read_before.values())
    )
    return chain, left_by_draw


def _check_finite_differences(
    draws: list[_Draw], left_by_draw: list[dict[str, torch.Tensor]]
) -> FiniteDifferenceResult:
    """Autograd against the draws' central differences; the lines in order against both.

    Autograd agrees on every draw checked: `_draw` rejects a draw where it does not (a kink,
    an overflow), so `holds` records that the draws kept were smooth, not a verdict that
    could come out False here."""
    autograd_error, lines_error, holds = 0.0, None, True
    for draw, left in zip(draws, left_by_draw, strict=True):
        autograd_error = max(autograd_error, draw.autograd_error)
        holds = holds and draw.autograd_error <= draw.finite_difference_tolerance
        inputs = draw.directions[0]
        if any(n in left for n in inputs):
            zeros = {n: torch.zeros_like(draw.adjoints[n]) for n in inputs}
            e = draw.finite_difference_error({**zeros, **left})
            lines_error = e if lines_error is None else max(lines_error, e)
    tolerance = max(draw.finite_difference_tolerance for draw in draws)
    return FiniteDifferenceResult(holds, autograd_error, lines_error, tolerance=tolerance)


def check(derivation: Derivation | str | Path, *, draws: int = DRAWS, seed: int = 0) -> Report:
    """Check every line of a derivation (a parsed one, or a file to load) against autograd.

    Raises DerivationError (a ValueError) for a file that cannot be checked.
    """
    if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
        raise ValueError(f"draws must be a whole number >= 1, got {draws!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a whole number >= 0, got {seed!r}")
    d = derivation if isinstance(derivation, Derivation) else load(derivation)
    ev = _Evaluator(d)
    with _scope(d), torch.random.fork_rng(devices=[]):
        sampled = _draws(ev, draws, seed)
        g = torch.Generator().manual_seed(seed + 1)
        lines = [_check_line(ev, u, sampled, g) for u in d.updates]
        for a in d.assertions:
            lines[a.after - 1].assertions.append(_check_assertion(ev, a, sampled))
        chain, left_by_draw = _run_in_order(ev, lines, sampled)
        fd = _check_finite_differences(sampled, left_by_draw)
    values = [draw.values for draw in sampled]
    return Report(d, lines, chain, fd, values, [draw.adjoints for draw in sampled], seed)
