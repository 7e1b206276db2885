"""The documentation sites as a reader gets them: `make docs` without Quarto builds the static preview and never
reaches nbdev's Quarto installer; every page opens in headless Chromium with its title, the link to the next page
and (on the results site) its figures; with a `quarto` on PATH the Makefile hands both sites to it; the README is
generated from `nbs/index.ipynb`."""
import functools, http.server, os, re, shutil, subprocess, sys, threading, time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse
import pytest

from artsim.docs import readme_markdown

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
STAMP = '.venv/.artsim-installed'   # `make -o STAMP`: never (re)install from a test
RECORDERS = ('sudo', 'pip', 'pip3', 'curl', 'wget', 'dpkg', 'apt-get', 'installer')


def make_env(tmp:Path, quarto:bool=False) -> tuple[dict, Path]:
    "An environment whose PATH starts with recorders of every installer nbdev could reach, and has a `quarto` only if asked"
    fake, log = tmp/'fakebin', tmp/'calls.log'
    fake.mkdir()
    for name in RECORDERS + (('quarto',) if quarto else ()):
        f = fake/name
        if name == 'quarto':  # a stand-in: records, runs the project's pre-render step as Quarto would, writes an empty site
            f.write_text(f"#!{sys.executable}\n" + QUARTO_STANDIN.replace('LOG', str(log)))
        else: f.write_text(f'#!/bin/sh\necho "{name} $*" >> "{log}"\nexit 0\n')
        f.chmod(0o755)
    dirs = [str(fake), str(BIN)] + [d for d in os.environ.get('PATH', '').split(':')
                                    if d and Path(d).resolve() != fake.resolve() and not (Path(d)/'quarto').exists()]
    env = {**os.environ, 'PATH': ':'.join(dirs), 'MAKEFLAGS': ''}
    if not quarto: assert shutil.which('quarto', path=env['PATH']) is None
    return env, log


QUARTO_STANDIN = r'''
import os, sys, subprocess
from pathlib import Path
import yaml
with open('LOG', 'a') as f: f.write(f"quarto {' '.join(sys.argv[1:])} | cwd={os.getcwd()} | ARTSIM_RUN={os.environ.get('ARTSIM_RUN', '')}\n")
if sys.argv[1:2] == ['render'] and all(a.startswith('--') for a in sys.argv[2:]):  # a whole project, as Quarto renders it
    cfg = yaml.safe_load(Path('_quarto.yml').read_text())
    proj = cfg.get('project', {})
    for m in cfg.get('metadata-files', []): proj.update((yaml.safe_load(Path(m).read_text()) or {}).get('project', {}))
    if proj.get('pre-render'): subprocess.run(proj['pre-render'], shell=True, check=True)
    Path(proj.get('output-dir', '_site')).mkdir(exist_ok=True)
'''


def calls(log:Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def make(target:str, env:dict, *args, timeout=600) -> subprocess.CompletedProcess:
    return subprocess.run(['make', '--no-print-directory', '-o', STAMP, target, *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope='module')
def tiny_run(tiny_run) -> Path:
    "Every chapter executed on the tiny preset, as `make demo` would run them on the demo preset (the session's shared run)"
    return tiny_run.path


@pytest.fixture(scope='module')
def preview(tiny_run, tmp_path_factory):
    "`make docs RUN=<the tiny run>` on a PATH without Quarto, installers replaced by recorders"
    tmp = tmp_path_factory.mktemp('preview')
    env, log = make_env(tmp)
    out = tmp/'site'
    r = make('docs', env, f'RUN={tiny_run}', f'DOCS_PREVIEW={out}')
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return dict(out=out, log=log, result=r, run=tiny_run)


def test_make_docs_without_quarto_builds_the_preview_and_installs_nothing(preview):
    assert calls(preview['log']) == [], calls(preview['log'])
    assert 'quarto is not on PATH: building the static preview instead' in preview['result'].stdout
    out = preview['out']
    assert (out/'index.html').is_file() and (out/'results'/'index.html').is_file()
    assert not (ROOT/'.installing').exists()


def test_the_recorders_catch_nbdevs_installer(tmp_path):
    "What the test above guards against: nbdev's own path to Quarto without it calls sudo and a pip outside .venv"
    env, log = make_env(tmp_path)
    r = subprocess.run([sys.executable, '-c', 'from nbdev.quarto import _ensure_quarto; _ensure_quarto()'],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    got = calls(log)
    assert any(c.startswith('sudo ') for c in got) and any(c.startswith('pip install -e') for c in got), got


PIPELINE_PAGES = ('painter', 'sources', 'standin', 'measures', 'backbone', 'families', 'modelfile', 'network', 'learning',
                  'metrics', 'baselines', 'report', 'runs', 'stages', 'numerics', 'commands', 'reproduce', 'plan',
                  'estimates', 'explain', 'cli', 'indexing', 'export', 'datacard', 'site', 'docs', 'api', 'version',
                  'claims')   # the sidebar's order


def expected_docs_pages() -> list[str]:
    "The docs site's pages in thesis order: home, every chapter there is, the notebooks that run them"
    assert list((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))
    return (['index.html'] + [f.name.split('_', 1)[1].replace('.ipynb', '.html') for f in sorted((ROOT/'nbs').glob('[0-9][0-9]_*.ipynb'))]
            + [f'pipeline/{n}.html' for n in PIPELINE_PAGES])


def unavailable(why:str):
    "No browser: a skip on a developer's machine, a failure under CI (CI=true), where the browser tests must run"
    if os.environ.get('CI', '').strip().lower() not in ('', '0', 'false', 'no'): pytest.fail(f'CI runs the browser tests, but {why}')
    pytest.skip(why)


@pytest.fixture(scope='module')
def browser():
    "Debian's headless Chromium, installed with apt-get when missing, driven by Playwright"
    exe = shutil.which('chromium')
    if exe is None:
        if shutil.which('apt-get') is None or os.geteuid() != 0: unavailable("no chromium, and apt-get cannot install it here (needs apt-get as root)")
        env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
        for cmd in (['apt-get', 'update', '-qq'], ['apt-get', 'install', '-y', '-qq', 'chromium']):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
            if r.returncode != 0: unavailable(f"apt-get could not install chromium: {' '.join(cmd)}: {r.stderr.strip()[-300:]}")
        exe = shutil.which('chromium')
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        # no background connections: this machine's network is closed, and Chromium would try them at every start
        b = p.chromium.launch(executable_path=exe, args=['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                                                         '--disable-component-update', '--disable-sync', '--no-first-run'])
        yield b
        b.close()


def test_a_missing_browser_fails_under_ci(monkeypatch):
    "Where Chromium cannot be had, CI fails the browser tests rather than passing without them"
    monkeypatch.setenv('CI', 'true')
    with pytest.raises(pytest.fail.Exception, match='CI runs the browser tests'): unavailable('no chromium')
    monkeypatch.setenv('CI', 'false')
    with pytest.raises(pytest.skip.Exception): unavailable('no chromium')


@pytest.fixture(scope='module')
def served(preview):
    "The preview served over HTTP on 127.0.0.1, a free port"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a): pass
    handler = functools.partial(Quiet, directory=str(preview['out']))
    srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{srv.server_address[1]}/'
    srv.shutdown(); srv.server_close()


# Quarto-only markup and notebook furniture a reader should never see in the prose (code may quote them)
RAW_MARKUP = (':::', '{{<', 'output-file:', 'WARNING: THIS FILE WAS AUTOGENERATED', '{target=')
PROSE_JS = """() => { const m = document.querySelector('main').cloneNode(true);
  m.querySelectorAll('code, pre, .jp-InputArea').forEach(e => e.remove()); return m.innerText; }"""


def check_pages(browser, base:str, pages:list[str], shots:Path, figures:set[str]=frozenset()) -> list[str]:
    "Open each page in order: it loads, has its title, links to the next one; figures load as images where expected"
    seen, page = [], browser.new_page(viewport={'width': 1280, 'height': 1000})
    for i, href in enumerate(pages):
        resp = page.goto(base + href)
        assert resp is not None and resp.status == 200, href
        h1 = page.inner_text('h1.page-title').strip()
        assert h1 and page.title().startswith(h1 + ' - '), (href, h1, page.title())
        nxt = page.locator('a[rel=next]')
        if i + 1 < len(pages):
            assert nxt.count() == 1, href
            assert page.evaluate('document.querySelector("a[rel=next]").href') == base + pages[i + 1], href
        else: assert nxt.count() == 0, href
        prose = page.evaluate(PROSE_JS)
        assert not [m for m in RAW_MARKUP if m in prose], (href, [m for m in RAW_MARKUP if m in prose])
        assert not prose.split(h1, 1)[-1].lstrip().startswith('---'), href
        code = page.evaluate('[...document.querySelectorAll(".jp-InputArea-editor")].map(e => e.innerText)')
        assert not [c for c in code if c.lstrip().startswith('#|')], href  # cell options and nbdev directives are applied, not shown
        assert page.locator('.jp-InputPrompt, .jp-OutputPrompt').count() == 0, href
        imgs = page.evaluate('[...document.querySelectorAll("main img")].map(i => [i.complete, i.naturalWidth])')
        if href in figures:
            assert imgs and all(ok and w > 0 for ok, w in imgs), (href, imgs)
        page.screenshot(path=str(shots/(href.replace('/', '_') + '.png')), full_page=False)
        seen.append(f'{href}: {h1}' + (f' ({len(imgs)} figures)' if imgs else ''))
    page.close()
    return seen


def test_preview_in_chromium(preview, served, browser, tmp_path_factory):
    shots = tmp_path_factory.mktemp('screenshots')
    docs = expected_docs_pages()
    seen = check_pages(browser, served, docs, shots)
    run = preview['run']
    chapters = [f'results/{f.stem}.html' for f in sorted((run/'notebooks').glob('[0-9][0-9]_*.ipynb'))]
    results = ['results/index.html'] + (['results/report.html'] if (run/'report.md').exists() else []) + chapters
    seen += check_pages(browser, served, results, shots, figures=set(chapters))
    print('pages checked:\n  ' + '\n  '.join(seen) + f'\nscreenshots in {shots}')
    assert len(seen) == len(docs) + len(results)


def test_the_results_of_07_show_no_stderr_and_no_markdown_markup(preview, served, browser):
    "The evaluation page a reader opens: no red stderr box (deprecation warnings, progress bars) and the headline table as a table"
    page = browser.new_page()
    assert page.goto(served + 'results/07_evaluation.html').status == 200
    stderr = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
    assert stderr.count() == 0, stderr.all_inner_texts()
    prose = page.evaluate(PROSE_JS)
    assert '**' not in prose, prose[max(0, prose.find('**') - 200):prose.find('**') + 200]
    assert page.locator('.jp-OutputArea-output table th', has_text='against the Siamese network').count() == 1
    assert page.locator('.jp-OutputArea-output table strong', has_text='beats it on').count() + page.locator(
        '.jp-OutputArea-output table td', has_text='no clear difference').count() > 0   # the verdicts, rendered
    # and no executed chapter carries progress bars or library warnings on stderr
    for f in sorted((preview['run']/'notebooks').glob('[0-9][0-9]_*.ipynb')):
        assert page.goto(served + f'results/{f.stem}.html').status == 200
        assert stderr.count() == 0, (f.stem, stderr.all_inner_texts()[:3])
    page.close()



# elements of a page whose content is wider than they are and that hide the rest: a line cut off at the right edge
CUT_JS = """() => [...document.querySelectorAll('main *')]
  .filter(e => e.clientWidth > 0 && e.scrollWidth > e.clientWidth + 1
               && ['hidden', 'clip'].includes(getComputedStyle(e).overflowX))
  .map(e => e.className + ': ' + e.innerText.slice(0, 100))"""
# the lines each row label (the index) of a table a chapter printed takes on the page
LABEL_LINES_JS = """() => [...document.querySelectorAll('.jp-OutputArea-output tbody th')].map(th => {
  const r = document.createRange(); r.selectNodeContents(th);
  return [th.innerText, new Set([...r.getClientRects()].map(x => Math.round(x.top))).size]; })"""


def results_pages(run:Path) -> list[str]:
    chapters = sorted((run/'notebooks').glob('[0-9][0-9]_*.ipynb'))
    return ['results/index.html'] + [f'results/{f.stem}.html' for f in chapters]


def test_no_line_of_code_or_output_is_cut_off_at_the_right_edge(preview, served, browser):
    "A parameter cell's long comments, a 120-character line, a table wider than the page: each scrolls, none is cut off"
    page = browser.new_page(viewport={'width': 1280, 'height': 1000})
    pages = expected_docs_pages() + results_pages(preview['run'])
    wide = 0
    for href in pages:
        assert page.goto(served + href).status == 200, href
        assert page.evaluate(CUT_JS) == [], href
        wide += page.evaluate('[...document.querySelectorAll(".jp-InputArea-editor")].filter(e => e.scrollWidth > '
                              'e.clientWidth + 1).length')
    assert wide > 0   # the check saw code wider than the page (the chapters' parameter cells), scrollable
    page.close()


def test_the_tables_of_06_and_07_show_each_row_label_on_one_line_and_no_markdown(preview, served, browser):
    "06's ablation and 07's measures: '**' would be markdown an HTML table shows as it is; labels folded into 3-4 lines"
    page = browser.new_page(viewport={'width': 1280, 'height': 1000})
    for chapter in ('06_training', '07_evaluation'):
        assert page.goto(served + f'results/{chapter}.html').status == 200
        prose = page.evaluate(PROSE_JS)
        assert '**' not in prose, (chapter, prose[max(0, prose.find('**') - 200):prose.find('**') + 200])
        labels = page.evaluate(LABEL_LINES_JS)
        assert labels and all(n == 1 for _, n in labels), (chapter, [l for l in labels if l[1] != 1])
        if chapter == '06_training': assert any(t.startswith('the recipe (3 seeds)') for t, _ in labels), labels
    page.close()

class _Links(HTMLParser):
    "The href and src of every element of a page, and its anchors (id, name)"
    def __init__(self):
        super().__init__(); self.links, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.links += [a[k] for k in ('href', 'src') if a.get(k)]
        self.ids |= {a[k] for k in ('id', 'name') if a.get(k)}


def configured_hosts() -> set:
    """The hosts settings.ini names (doc_host, git_url: none while nothing is published), and the documentation hosts other nbdev
    libraries configure for themselves (nbdev links `nbdev.serve.proc_nbs` to nbdev's own site)"""
    from artsim.docs import doc_url, source_url
    from nbdev.doclinks import _build_lookup_table
    others = {urlparse(e['settings']['doc_host']).netloc for lib, e in _build_lookup_table()[0].items()
              if lib != 'artsim' and (e.get('settings') or {}).get('doc_host')}
    return {urlparse(u).netloc for u in (doc_url(ROOT), source_url(ROOT)) if u} | others - {''}


def site_link_problems(out:Path, hosts:set) -> list[str]:
    "Every link of the site at `out` that leaves for a host not in `hosts`, or points in the site at a page or anchor that is not there"
    out = out.resolve()
    pages = {}
    for f in out.rglob('*.html'):
        p = _Links(); p.feed(f.read_text(encoding='utf-8')); pages[f.resolve()] = p
    bad = []
    for f, p in pages.items():
        for link in p.links:
            u, where = urlparse(link), f'{f.relative_to(out)}: {link}'
            if u.scheme in ('http', 'https'):
                if u.netloc not in hosts: bad.append(where + ' (a host that is not configured)')
            elif u.scheme in ('data', 'mailto'): continue
            elif u.scheme or link.startswith('/'): bad.append(where + ' (leaves the site)')
            else:
                t = (f.parent/unquote(u.path)).resolve() if u.path else f
                if not t.exists(): bad.append(where + ' (no such page)')
                elif u.fragment and t in pages and unquote(u.fragment) not in pages[t].ids: bad.append(where + ' (no such anchor)')
    return bad


def readme_link_problems(readme:str, hosts:set) -> list[str]:
    "Every link of the README to a host not in `hosts`, or to a file the repository does not have"
    bad = []
    for link in re.findall(r'\]\(([^)\s]+)\)', readme) + re.findall(r'<(https?://[^>\s]+)>', readme):
        u = urlparse(link)
        if u.scheme in ('http', 'https'):
            if u.netloc not in hosts: bad.append(f'{link} (a host that is not configured)')
        elif u.scheme or link.startswith('/') or (u.path and not (ROOT/unquote(u.path)).exists()): bad.append(f'{link} (not a file of the repository)')
    return bad


def test_links_resolve_and_go_to_configured_hosts_only(preview):
    "The README and both sites of the preview: no link to a host settings.ini does not name, every link within them resolves"
    hosts = configured_hosts()
    site = site_link_problems(preview['out'], hosts)
    readme = readme_link_problems((ROOT/'README.md').read_text(), hosts)
    assert not site and not readme, '\n'.join(site[:40] + readme)
    # the check sees what it must: a link to an unconfigured host, a missing page, a missing anchor
    probe = preview['out']/'zz_probe.html'
    probe.write_text('<a href="https://artsim.github.io/artsim/data.html">x</a><a href="nowhere.html">y</a><a href="index.html#no-such-anchor">z</a>')
    try: assert len(site_link_problems(preview['out'], hosts)) == 3
    finally: probe.unlink()
    assert len(readme_link_problems('[a](https://artsim.github.io/artsim/x.html) [b](nbs/nope.ipynb) [c](nbs/index.ipynb)', hosts)) == 2


def test_api_entries_and_hidden_cells(preview):
    "The API of exported names is on the chapter pages; hidden and export cells are not shown as code"
    gen = (preview['out']/'generation.html').read_text()
    assert '<h3' in gen and 'resolve_dtype' in gen and 'load_refiner' in gen
    data = (preview['out']/'results'/'00_data.html').read_text()
    assert 'default_exp' not in data and 'Exported source' in data


def test_make_docs_with_quarto_hands_both_sites_to_it(tiny_run, tmp_path):
    "With a `quarto` on PATH (a stand-in that records its calls), `make docs` runs nbdev_docs and the results site's render"
    env, log = make_env(tmp_path, quarto=True)
    had = {d: (ROOT/d).exists() for d in ('_docs', '_site', 'results')}
    try:
        r = make('docs', env, f'RUN={tiny_run}')
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        got = calls(log)
        assert not [c for c in got if not c.startswith('quarto ')], got
        assert any(c.startswith('quarto render --no-cache | cwd=' + str(ROOT/'_proc')) for c in got), got
        assert f'quarto render | cwd={ROOT} | ARTSIM_RUN={tiny_run}' in got, got
        overview = (ROOT/'results'/'_overview.md').read_text()   # staged by _quarto.yml's pre-render step
        assert str(tiny_run) in overview and '00_data.ipynb' in overview
    finally:
        for d, existed in had.items():
            if not existed: shutil.rmtree(ROOT/d, ignore_errors=True)


def _without_headline(md:str) -> str:
    "The README without its headline table, which depends on the runs on this machine"
    head, sep, rest = md.partition('### The headline table of the last demo run')
    return head + sep + ('\n## ' + rest.split('\n## ', 1)[1] if '\n## ' in rest else '')



def test_the_readmes_index_example_writes_its_index_outside_the_run_it_reads():
    "Followed as written, its `cd` included, the README's artsim_index writes the index outside the run folder"
    import shlex
    readme = (ROOT/'README.md').read_text()
    cwd, seen = ROOT, []
    for block in re.findall(r'```sh\n(.*?)```', readme, re.S):
        for line in block.replace('\\\n', ' ').splitlines():   # continued lines joined
            for cmd in line.split('&&'):
                if not re.match(r'\s*(cd|\S*artsim_index)\s', cmd): continue   # (a python -c "..." spans lines)
                words = shlex.split(cmd, comments=True)
                if words[:1] == ['cd']: cwd = (cwd/words[1]).resolve()
                if words and Path(words[0]).name == 'artsim_index':
                    seen.append(((cwd/words[words.index('--out') + 1]).resolve(), (cwd/words[1]).resolve()))
    assert seen, 'the README shows no artsim_index'
    for out, folder in seen:
        run = next((p for p in (folder, *folder.parents) if p.parent == ROOT/'runs'), None)
        assert run is not None and not out.is_relative_to(run), (out, run)

def test_readme_is_generated_from_index():
    readme = (ROOT/'README.md').read_text()
    assert _without_headline(readme) == _without_headline(readme_markdown(ROOT)), \
        "README.md is generated from nbs/index.ipynb: edit the notebook, then run `make readme`"
    for s in ('make test', 'make demo', 'synthetic', 'accelerate launch', '## Your own paintings', '## Benchmarks', 'make lab'):
        assert s in readme, s
