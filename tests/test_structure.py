"""The package's import graph has no cycles: every import of one artsim module by another counts, at the top of a module
or inside a function, and no module reaches another through `importlib` strings."""
import ast, configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT/'artsim'
INIT = '__init__'


def _modules() -> dict:
    "module name -> its syntax tree, for every `artsim/*.py` but the generated index `_modidx.py`."
    return {f.stem: ast.parse(f.read_text(encoding='utf-8'), str(f)) for f in sorted(PKG.glob('*.py'))
            if f.name != '_modidx.py'}


def _targets(node, names:set) -> list:
    "The artsim modules one import statement loads (`__init__` for the package itself), or [] for other packages."
    def module(name:str) -> list:
        if name in names: return [name]
        return [] if (PKG/f'{name}.py').exists() else [INIT]   # `_modidx` (generated, no imports) is left out
    if isinstance(node, ast.Import):
        out = []
        for a in node.names:
            if a.name == 'artsim': out.append(INIT)
            elif a.name.startswith('artsim.'): out += module(a.name.split('.')[1])
        return out
    if not isinstance(node, ast.ImportFrom): return []
    if node.level == 0 and node.module == 'artsim': base = ''
    elif node.level == 0 and (node.module or '').startswith('artsim.'): base = node.module.split('.')[1]
    elif node.level == 1: base = (node.module or '').split('.')[0]
    else: return []
    if base: return module(base)
    # `from artsim import x` / `from . import x`: a module of the package, or a name its __init__ defines
    return [a.name if a.name in names else INIT for a in node.names]


def import_graph() -> dict:
    "module -> {(imported module, line)} over every import statement of `artsim/*.py`, inner ones included."
    mods = _modules()
    graph = {m: set() for m in mods}
    for m, tree in mods.items():
        for n in ast.walk(tree):
            graph[m] |= {(t, n.lineno) for t in _targets(n, set(mods)) if t != m}
    return graph


def cycles(graph:dict) -> list:
    "The strongly connected components with more than one module (Tarjan's algorithm), each as a sorted list."
    edges = {m: sorted({t for t, _ in es}) for m, es in graph.items()}
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = counter[0]; counter[0] += 1
        stack.append(v); on.add(v)
        for w in edges.get(v, []):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(edges):
        if v not in index: visit(v)
    return sorted(out)


def _a_cycle(graph:dict, comp:list) -> list:
    "One closed path through the component, with the line of each import: ['a:12 -> b', ...]."
    inside = set(comp)
    start, path, seen = comp[0], [comp[0]], {comp[0]}
    def walk(v):
        for w, line in sorted(graph[v]):
            if w == start: return [f'{v}:{line} -> {w}']
            if w in inside and w not in seen:
                seen.add(w)
                if (rest := walk(w)) is not None: return [f'{v}:{line} -> {w}'] + rest
        return None
    return walk(start) or path


def test_the_graph_sees_inner_and_package_imports():
    g = import_graph()
    assert ('backbone' in {t for t, _ in g['siamese']}) and (INIT in {t for t, _ in g['evaluation']}), g['evaluation']
    assert 'network' in {t for t, _ in g[INIT]}   # the lazy `artsim.SiameseSimilarity`, imported inside a function


def test_no_import_cycles():
    g = import_graph()
    found = cycles(g)
    assert not found, 'import cycles in artsim/ (module:line -> imported):\n' + '\n'.join(
        f"  {', '.join(c)}: " + '; '.join(_a_cycle(g, c)) for c in found)


def _dynamic_imports(tree) -> list:
    "(line, call) for each `importlib.import_module(...)` / `__import__(...)` that may load an artsim module."
    out = []
    for n in ast.walk(tree):
        if not isinstance(n, ast.Call): continue
        f = n.func
        name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else None
        if name not in ('import_module', '__import__') or not n.args: continue
        a = n.args[0]
        first = a.values[0] if isinstance(a, ast.JoinedStr) and a.values else a
        lit = first.value if isinstance(first, ast.Constant) and isinstance(first.value, str) else None
        # a name computed at run time may be any module: only a literal naming another package is let through
        if lit is None or lit.startswith(('artsim', '.')): out.append((n.lineno, ast.unparse(n)))
    return out


def test_no_module_imports_artsim_modules_by_name_strings():
    found = [f'{m}.py:{line}: {call}' for m, tree in _modules().items() for line, call in _dynamic_imports(tree)]
    assert not found, 'artsim modules imported through importlib strings (use the modules themselves):\n  ' + \
        '\n  '.join(found)


def test_the_version_modules_record_is_the_packages():
    "`artsim.version` (what a calibration or an index records) says what settings.ini and `artsim.__version__` say."
    import artsim, artsim.version
    cfg = configparser.ConfigParser()
    cfg.read(ROOT/'settings.ini', encoding='utf-8')
    assert artsim.version.__version__ == artsim.__version__ == cfg['DEFAULT']['version']
